package flowgate.purpose_minimisation

import data.flowgate.common
import rego.v1

limits := data.config.purpose_minimisation.purposes[input.purpose]

default applies := false

applies if {
	common.personal
	input.action in {"collect", "use", "retain", "share"}
}

allowed := {c | some c in limits.categories} | {"non_personal"}

excess := count(common.categories - allowed) > 0

capped := input.retention_days > limits.max_retention_days

answer := common.answer("purpose-minimisation", applies, [
	{"name": "excess-categories", "fires": excess, "deny": true, "remedies": []},
	{"name": "retention-cap", "fires": capped, "obligation": {"kind": "limit_retention", "days": limits.max_retention_days}},
])
