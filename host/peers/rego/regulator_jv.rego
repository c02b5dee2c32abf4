package flowgate.regulator_jv

import data.flowgate.common
import rego.v1

config := data.config.regulator_jv

default applies := false

applies if {
	input.recipient.kind == "regulator_jv"
	common.categories != {"non_personal"}
	input.action != "delete"
}

level := input.data.deidentification

anonymised := level == "anonymised"

aggregated := level == "aggregated"

small_groups := input.data.k < config.min_k

default reporting := false

reporting if {
	level == "pseudonymised"
	input.purpose == "regulatory_reporting"
}

default pseudonymised_other := false

pseudonymised_other if {
	level == "pseudonymised"
	input.purpose != "regulatory_reporting"
}

default aggregate_small := false

aggregate_small if {
	aggregated
	small_groups
}

default aggregate_enough := false

aggregate_enough if {
	aggregated
	not small_groups
}

identified := level == "identified"

answer := common.answer("regulator-jv", applies, [
	{"name": "anonymised", "fires": anonymised},
	{"name": "aggregate-k", "fires": aggregate_small, "obligation": {"kind": "aggregate", "k": config.min_k}},
	{"name": "aggregate-k", "fires": aggregate_enough},
	{"name": "pseudonymised-reporting", "fires": reporting, "obligation": {"kind": "limit_retention", "days": config.max_retention_days}},
	{"name": "pseudonymised-reporting", "fires": pseudonymised_other, "deny": true, "remedies": ["aggregate"]},
	{"name": "identified", "fires": identified, "deny": true, "remedies": ["pseudonymise"]},
])
