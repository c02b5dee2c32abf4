package flowgate.credit_via_bureau

import data.flowgate.common
import rego.v1

config := data.config.credit_via_bureau

default carries_credit := false

carries_credit if input.data.credit_information

carries_credit if input.purpose == "credit_assessment"

default applies := false

applies if {
	common.personal
	input.action in {"share", "disclose", "export"}
	carries_credit
	input.recipient.kind in {"financial_institution", "third_party", "affiliate", "credit_bureau", "overseas", "public"}
}

bureau := input.recipient.kind == "credit_bureau"

no_direct_connection := bureau == false

default unlicensed := false

unlicensed if {
	bureau
	not licensed
}

licensed if {
	some entry in config.licensed_bureaus
	entry.id == input.recipient.id
	entry.licence == input.recipient.licence
}

default no_consent := false

no_consent if {
	bureau
	input.lawful_basis != "consent"
}

no_consent if {
	bureau
	input.consent.state != "given"
}

default prohibited := false

prohibited if {
	bureau
	some c in config.prohibited_categories
	c in common.categories
}

default log := false

log if {
	bureau
	not unlicensed
	not no_consent
	not prohibited
}

answer := common.answer("credit-via-bureau", applies, [
	{"name": "no-direct-connection", "fires": no_direct_connection, "deny": true, "remedies": ["route_via_credit_bureau"]},
	{"name": "unlicensed-bureau", "fires": unlicensed, "deny": true, "remedies": ["route_via_credit_bureau"]},
	{"name": "bureau-consent", "fires": no_consent, "deny": true, "remedies": ["obtain_consent"]},
	{"name": "prohibited-categories", "fires": prohibited, "deny": true, "remedies": []},
	{"name": "bureau-log", "fires": log, "obligation": {"kind": "log_to_regulator"}},
])
