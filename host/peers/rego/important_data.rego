package flowgate.important_data

import data.flowgate.common
import rego.v1

config := data.config.important_data

default in_scope := false

in_scope if input.data.dsl_class == "core"

in_scope if {
	input.data.dsl_class == "important"
	input.data.important_notified
}

default applies := false

applies if {
	in_scope
	input.action != "delete"
}

default core_data := false

core_data if {
	input.data.dsl_class == "core"
	not domestic_recipient
}

domestic_recipient if {
	input.recipient.kind in {k | some k in config.core_data_recipients}
	input.destination == "CN"
}

default important_export := false

important_export if {
	input.data.dsl_class == "important"
	common.leaves_china
	input.export_mechanism != "security_assessment"
}

default log := false

log if {
	common.leaves_china
	not core_data
	not important_export
}

answer := common.answer("important-data", applies, [
	{"name": "core-data", "fires": core_data, "deny": true, "remedies": []},
	{"name": "important-export", "fires": important_export, "deny": true, "remedies": ["security_assessment_required"]},
	{"name": "important-export-log", "fires": log, "obligation": {"kind": "log_to_regulator"}},
])
