package flowgate.statutory_credit_reporting

import data.flowgate.common
import rego.v1

default applies := false

applies if {
	common.personal
	input.recipient.kind == "central_bank"
	input.action in {"share", "entrust", "disclose"}
}

incomplete := input.report_coverage < 1

answer := common.answer("statutory-credit-reporting", applies, [
	{"name": "statutory-report", "fires": true, "obligation": {"kind": "log_to_regulator"}},
	{"name": "incomplete-report", "fires": incomplete, "obligation": {"kind": "flag_incomplete_report"}},
])
