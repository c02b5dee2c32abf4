package flowgate.lawful_basis

import data.flowgate.common
import rego.v1

deletion := input.action == "delete"

default no_basis := false

no_basis if {
	not deletion
	input.lawful_basis == "none"
}

default no_legitimate_interest := false

no_legitimate_interest if {
	not deletion
	input.regime == "pipl"
	input.lawful_basis == "legitimate_interest"
}

default consent_not_in_force := false

consent_not_in_force if {
	not deletion
	input.lawful_basis == "consent"
	input.consent.state != "given"
}

answer := common.answer("lawful-basis", common.personal, [
	{"name": "deletion", "fires": deletion},
	{"name": "no-basis", "fires": no_basis, "deny": true, "remedies": ["obtain_consent"]},
	{"name": "no-legitimate-interest", "fires": no_legitimate_interest, "deny": true, "remedies": ["obtain_consent"]},
	{"name": "consent-not-in-force", "fires": consent_not_in_force, "deny": true, "remedies": ["obtain_consent"]},
])
