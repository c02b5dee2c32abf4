# Shared notions of flow-record.md, and the shape of one policy's answer.
package flowgate.common

import rego.v1

sensitive_categories := {"location", "payment_account", "loan_record", "credit_score", "income", "biometric", "health", "religion", "minor"}

categories := {c | some c in input.data.categories}

default personal := false

personal if {
	categories != {"non_personal"}
	input.data.deidentification != "anonymised"
}

default sensitive := false

sensitive if {
	personal
	count(categories & sensitive_categories) > 0
}

default separate_consent := false

separate_consent if input.consent.kind in {"separate", "written", "guardian"}

default leaves_china := false

leaves_china if input.action == "export"

leaves_china if input.destination != "CN"

original_purpose := object.get(input, "original_purpose", input.purpose)

# One policy's answer from its rule table, in table order. Each rule:
# {"name", "fires", "deny", "remedies"} or {"name", "fires", "obligation"}.
answer(name, applies, rules) := {"policy": name, "applies": false} if not applies

answer(name, applies, rules) := result if {
	applies
	fired := [r | some r in rules; r.fires]
	denied := [r | some r in fired; object.get(r, "deny", false)]
	result := {
		"policy": name,
		"applies": true,
		"deny": count(denied) > 0,
		"fired": [r.name | some r in fired],
		"remedies": {x | some r in denied; some x in r.remedies},
		"obligations": [r.obligation | some r in fired; object.get(r, "obligation", null) != null],
	}
}
