package flowgate.automated_decisions

import data.flowgate.common
import rego.v1

config := data.config.automated_decisions

default in_scope := false

in_scope if input.automated_decision

in_scope if input.price_differentiated

in_scope if input.purpose in {p | some p in config.scope_purposes}

default applies := false

applies if {
	common.personal
	input.action != "delete"
	in_scope
}

price_discrimination := input.price_differentiated

default major_impact := false

major_impact if {
	input.automated_decision
	input.purpose in {p | some p in config.major_impact_purposes}
	input.impact_assessment == false
}

default opt_out := false

opt_out if {
	input.automated_decision
	input.purpose in {p | some p in config.opt_out_purposes}
}

answer := common.answer("automated-decisions", applies, [
	{"name": "price-discrimination", "fires": price_discrimination, "deny": true, "remedies": []},
	{"name": "major-impact-assessment", "fires": major_impact, "deny": true, "remedies": ["conduct_impact_assessment"]},
	{"name": "opt-out", "fires": opt_out, "obligation": {"kind": "offer_non_personalised_option"}},
])
