//! `GET /v1/policies`: the active policy set, as `flowgate policies` lists it.

use flowgate::Host;

/// The policy set's content id and activation, each policy's identity,
/// signers, limits, faults and quarantine, and what the trust file requires.
pub fn to_json(host: &Host) -> String {
    let policies: Vec<serde_json::Value> = host
        .policies()
        .iter()
        .map(|status| {
            let info = &status.info;
            let signers: Vec<serde_json::Value> =
                info.signers.iter().map(|s| serde_json::json!({"id": s.id, "holder": s.holder})).collect();
            serde_json::json!({
                "name": info.name,
                "version": info.version,
                "digest": info.digest.to_string(),
                "bundle_digest": info.bundle_digest.to_string(),
                "regulator": info.regulator,
                "signers": signers,
                "limits": {
                    "deadline_ms": status.limits.deadline_ms,
                    "memory_bytes": status.limits.memory_bytes,
                    "table_elements": status.limits.table_elements,
                },
                "faults": status.faults,
                "quarantined": status.quarantined,
            })
        })
        .collect();
    let required: Vec<String> = host.trust().map(|trust| trust.required().to_vec()).unwrap_or_default();
    let set = serde_json::json!({
        "policy_set": host.policy_set().to_string(),
        "activation": host.policy_set_version(),
        "required": required,
        "policies": policies,
    });
    set.to_string() + "\n"
}
