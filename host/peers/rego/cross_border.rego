package flowgate.cross_border

import data.flowgate.common
import rego.v1

config := data.config.cross_border

default applies := false

applies if {
	common.personal
	input.regime == "pipl"
	input.action != "delete"
	common.leaves_china
}

foreign_authority := input.recipient.kind == "foreign_authority"

assessment := input.impact_assessment == false

default separate := false

separate if {
	input.lawful_basis == "consent"
	not common.separate_consent
}

exempt := startswith(input.export_mechanism, "exempt_")

this_flow(counts) := input.volume.subjects if counts

this_flow(counts) := 0 if not counts

n := max([input.volume.ytd_export_subjects, this_flow(not_sensitive)])

s := max([input.volume.ytd_export_sensitive_subjects, this_flow(common.sensitive)])

not_sensitive := common.sensitive == false

default needs_security_assessment := false

needs_security_assessment if input.platform.ciio

needs_security_assessment if n >= config.security_assessment_subjects

needs_security_assessment if s >= config.security_assessment_sensitive_subjects

default security_assessment := false

security_assessment if {
	not exempt
	needs_security_assessment
	input.export_mechanism != "security_assessment"
}

default standard_contract := false

standard_contract if {
	not exempt
	not needs_security_assessment
	above_contract_threshold
	not input.export_mechanism in {"standard_contract", "certification", "security_assessment"}
}

above_contract_threshold if n >= config.standard_contract_subjects

above_contract_threshold if s > 0

default log := false

log if {
	not foreign_authority
	not assessment
	not separate
	not security_assessment
	not standard_contract
}

answer := common.answer("cross-border", applies, [
	{"name": "foreign-authority", "fires": foreign_authority, "deny": true, "remedies": []},
	{"name": "export-assessment", "fires": assessment, "deny": true, "remedies": ["conduct_impact_assessment"]},
	{"name": "export-separate-consent", "fires": separate, "deny": true, "remedies": ["obtain_separate_consent"]},
	{"name": "security-assessment", "fires": security_assessment, "deny": true, "remedies": ["security_assessment_required"]},
	{"name": "standard-contract", "fires": standard_contract, "deny": true, "remedies": ["standard_contract_or_certification_required"]},
	{"name": "export-log", "fires": log, "obligation": {"kind": "log_to_regulator"}},
])
