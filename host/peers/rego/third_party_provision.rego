package flowgate.third_party_provision

import data.flowgate.common
import rego.v1

default applies := false

applies if {
	common.personal
	input.action in {"share", "entrust"}
}

assessment := input.impact_assessment == false

default share_on_consent := false

share_on_consent if {
	input.action == "share"
	input.lawful_basis == "consent"
}

default separate := false

separate if {
	share_on_consent
	not common.separate_consent
}

separate if {
	share_on_consent
	input.consent.covers_recipient == false
}

default purpose_change := false

purpose_change if {
	share_on_consent
	input.purpose != common.original_purpose
	input.consent.covers_purpose == false
}

default notify := false

notify if {
	share_on_consent
	not assessment
	not separate
	not purpose_change
}

answer := common.answer("third-party-provision", applies, [
	{"name": "provision-assessment", "fires": assessment, "deny": true, "remedies": ["conduct_impact_assessment"]},
	{"name": "share-separate-consent", "fires": separate, "deny": true, "remedies": ["obtain_separate_consent"]},
	{"name": "purpose-change", "fires": purpose_change, "deny": true, "remedies": ["obtain_consent"]},
	{"name": "notify-subject", "fires": notify, "obligation": {"kind": "notify_subject"}},
])
