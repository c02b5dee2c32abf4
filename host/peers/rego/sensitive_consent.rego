package flowgate.sensitive_consent

import data.flowgate.common
import rego.v1

default applies := false

applies if {
	common.sensitive
	input.action != "delete"
}

by_consent := input.lawful_basis == "consent"

default guardian := false

guardian if {
	by_consent
	"minor" in common.categories
	input.consent.kind != "guardian"
}

default separate := false

separate if {
	by_consent
	not common.separate_consent
}

notice := input.notice_given == false

assessment := input.impact_assessment == false

default encrypt := false

encrypt if not any_deny

any_deny if guardian

any_deny if separate

any_deny if notice

any_deny if assessment

answer := common.answer("sensitive-consent", applies, [
	{"name": "guardian-consent", "fires": guardian, "deny": true, "remedies": ["obtain_guardian_consent"]},
	{"name": "separate-consent", "fires": separate, "deny": true, "remedies": ["obtain_separate_consent"]},
	{"name": "notice", "fires": notice, "deny": true, "remedies": ["give_notice"]},
	{"name": "impact-assessment", "fires": assessment, "deny": true, "remedies": ["conduct_impact_assessment"]},
	{"name": "encrypt-in-transit", "fires": encrypt, "obligation": {"kind": "encrypt_in_transit"}},
])
