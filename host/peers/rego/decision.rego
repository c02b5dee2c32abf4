# Combines the ten answers as flow-record.md says: deny overrides,
# obligations merge to the most protective parameter, remedies merge,
# nothing applied is not_applicable for non-personal data and deny otherwise.
package flowgate.decision

import data.flowgate
import data.flowgate.common
import rego.v1

answers := [
	flowgate.automated_decisions.answer,
	flowgate.credit_via_bureau.answer,
	flowgate.cross_border.answer,
	flowgate.important_data.answer,
	flowgate.lawful_basis.answer,
	flowgate.purpose_minimisation.answer,
	flowgate.regulator_jv.answer,
	flowgate.sensitive_consent.answer,
	flowgate.statutory_credit_reporting.answer,
	flowgate.third_party_provision.answer,
]

applied := [a | some a in answers; a.applies]

default denied := false

denied if {
	some a in applied
	a.deny
}

proposed := [o | some a in applied; not a.deny; some o in a.obligations]

merged(kind) := {"kind": kind, "k": max([o.k | some o in proposed; o.kind == kind])} if kind == "aggregate"

merged(kind) := {"kind": kind, "days": min([o.days | some o in proposed; o.kind == kind])} if kind == "limit_retention"

merged(kind) := {"kind": kind} if not kind in {"aggregate", "limit_retention"}

obligations := [merged(kind) | some kind in sort({o.kind | some o in proposed})]

remedies := sort({r | some a in applied; a.deny; some r in a.remedies})

fired := [{"policy": a.policy, "rule": r} | some a in applied; some r in a.fired]

default decision := {"effect": "not_applicable", "obligations": [], "remedies": [], "reasons": []}

decision := {"effect": "deny", "obligations": [], "remedies": [], "reasons": [{"policy": "flowgate", "rule": "no-policy-applied"}]} if {
	count(applied) == 0
	common.personal
}

decision := {"effect": "deny", "obligations": [], "remedies": remedies, "reasons": fired} if {
	count(applied) > 0
	denied
}

decision := {"effect": "allow_with_obligations", "obligations": obligations, "remedies": [], "reasons": fired} if {
	count(applied) > 0
	not denied
	count(obligations) > 0
}

decision := {"effect": "allow", "obligations": [], "remedies": [], "reasons": fired} if {
	count(applied) > 0
	not denied
	count(obligations) == 0
}
