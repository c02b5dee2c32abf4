//! Regulator-signed bundles: a platform runs exactly the policies its
//! regulators signed. One test per refusal (tampered files, a moved
//! signature, a key outside its grant, one key counted twice, expired and
//! revoked keys, unsigned reloads, downgrades), required policies that
//! cannot be dropped, revocation while running, and the set's provenance.
//! Keys are made at test time; no secret is committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowgate::sdk::{Effect, FlowRecord};
use flowgate::{Bundle, Error, Host, LoadError, PolicyEvent, SecretKey, TrustError, TrustPolicy};

use crate::{flowgate, scratch_dir};

/// A credit flow `credit-via-bureau` denies: straight to a lender.
const DIRECT: &str = r#"{"id":"direct","platform":{"id":"p"},"action":"share","data":{"categories":["loan_record"]},"purpose":"credit_assessment","lawful_basis":"consent","consent":{"state":"given","kind":"separate","covers_purpose":true,"covers_recipient":true},"recipient":{"kind":"financial_institution"},"notice_given":true,"impact_assessment":true}"#;

struct Keys {
    pboc: SecretKey,
    cac: SecretKey,
}

fn keys() -> Keys {
    Keys { pboc: SecretKey::generate().unwrap(), cac: SecretKey::generate().unwrap() }
}

/// A trust file: credit policies need both keys, the others the CAC's.
fn trust_text(keys: &Keys, extra: &str) -> String {
    format!(
        r#"required = ["credit-via-bureau"]
{extra}
[[key]]
id = "pboc-2026"
public = "{pboc}"
holder = "People's Bank of China"

[[key]]
id = "cac-2026"
public = "{cac}"
holder = "Cyberspace Administration of China"

[[grant]]
policies = ["credit-*"]
keys = ["pboc-2026", "cac-2026"]
threshold = 2

[[grant]]
policies = ["lawful-basis", "cross-border"]
keys = ["cac-2026"]
"#,
        pboc = keys.pboc.public(),
        cac = keys.cac.public()
    )
}

fn trust(keys: &Keys) -> TrustPolicy {
    TrustPolicy::parse("trust.toml", &trust_text(keys, "")).unwrap()
}

/// The reference bundle `name` in `root/name`, with `manifest` (or its
/// own), signed by `signers`.
fn bundle_dir(root: &Path, name: &str, manifest: Option<&str>, signers: &[&SecretKey]) -> PathBuf {
    let (_, reference, wasm) = flowgate_reference_set::bundles().find(|(n, _, _)| *n == name).unwrap();
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), manifest.unwrap_or(reference)).unwrap();
    std::fs::write(dir.join(flowgate::MODULE_FILE), wasm).unwrap();
    let _ = std::fs::remove_file(dir.join(flowgate::SIGNATURES_FILE));
    for key in signers {
        Bundle::sign_dir(&dir, key).unwrap();
    }
    dir
}

fn refusal(trust: &TrustPolicy, dir: &Path) -> TrustError {
    trust.verify(&Bundle::from_dir(dir).unwrap(), None).expect_err("refused")
}

#[test]
fn any_changed_byte_breaks_every_signature() {
    let keys = keys();
    let trust = trust(&keys);
    let root = scratch_dir("signed-tamper");
    let dir = bundle_dir(&root, "credit-via-bureau", None, &[&keys.pboc, &keys.cac]);
    let signers = trust.verify(&Bundle::from_dir(&dir).unwrap(), None).unwrap();
    assert_eq!(signers.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["cac-2026", "pboc-2026"]);

    let module = dir.join(flowgate::MODULE_FILE);
    let mut wasm = std::fs::read(&module).unwrap();
    let middle = wasm.len() / 2;
    wasm[middle] ^= 1;
    std::fs::write(&module, &wasm).unwrap();
    assert!(matches!(refusal(&trust, &dir), TrustError::Tampered { .. }), "a flipped byte in the module");
    wasm[middle] ^= 1;
    std::fs::write(&module, &wasm).unwrap();

    let manifest_path = dir.join(flowgate::MANIFEST_FILE);
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    for (edit, what) in [
        (manifest.replace("regulator = ", "regulator =  "), "a byte in the manifest"),
        (manifest.replace("\"PBOC-CR-2018-001\"", "\"PBOC-CR-2018-009\""), "the configuration"),
    ] {
        assert_ne!(edit, manifest);
        std::fs::write(&manifest_path, &edit).unwrap();
        assert!(matches!(refusal(&trust, &dir), TrustError::Tampered { .. }), "{what}");
    }
    std::fs::write(&manifest_path, &manifest).unwrap();
    trust.verify(&Bundle::from_dir(&dir).unwrap(), None).expect("restored, it verifies again");
}

#[test]
fn a_signature_moved_to_another_bundle_or_version_does_not_verify() {
    let keys = keys();
    let trust = trust(&keys);
    let root = scratch_dir("signed-moved");
    let signed = bundle_dir(&root, "lawful-basis", None, &[&keys.cac]);
    let other = bundle_dir(&root, "cross-border", None, &[]);
    std::fs::copy(signed.join(flowgate::SIGNATURES_FILE), other.join(flowgate::SIGNATURES_FILE)).unwrap();
    assert!(matches!(refusal(&trust, &other), TrustError::Tampered { .. }));

    let manifest = flowgate_reference_set::manifest("lawful-basis").unwrap();
    let newer = bundle_dir(
        &scratch_dir("signed-moved-v2"),
        "lawful-basis",
        Some(&manifest.replace("version = \"1.0.0\"", "version = \"1.1.0\"")),
        &[],
    );
    std::fs::copy(signed.join(flowgate::SIGNATURES_FILE), newer.join(flowgate::SIGNATURES_FILE)).unwrap();
    assert!(matches!(refusal(&trust, &newer), TrustError::Tampered { .. }), "a signature of 1.0.0 on 1.1.0");
}

#[test]
fn keys_count_only_where_granted_and_only_once() {
    let keys = keys();
    let trust = trust(&keys);
    let root = scratch_dir("signed-grants");
    // Granted only `credit-*`, the PBoC's key signs cross-border.
    let cross = bundle_dir(&root, "cross-border", None, &[&keys.pboc]);
    assert!(matches!(refusal(&trust, &cross), TrustError::BelowThreshold { found: 0, .. }));
    // No grant at all covers the name.
    let important = bundle_dir(&root, "important-data", None, &[&keys.cac]);
    assert!(matches!(refusal(&trust, &important), TrustError::NotGranted { .. }));
    // Two of two: one signature is not enough.
    let credit = bundle_dir(&root, "credit-via-bureau", None, &[&keys.cac]);
    assert!(matches!(refusal(&trust, &credit), TrustError::BelowThreshold { threshold: 2, found: 1, .. }));

    // The same key twice, in the signatures file and in the trust file under two ids.
    let doubled = std::fs::read_to_string(credit.join(flowgate::SIGNATURES_FILE)).unwrap();
    let body = doubled.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    std::fs::write(credit.join(flowgate::SIGNATURES_FILE), format!("{doubled}\n{body}\n")).unwrap();
    assert_eq!(Bundle::from_dir(&credit).unwrap().signatures.len(), 2);
    assert!(matches!(refusal(&trust, &credit), TrustError::BelowThreshold { found: 1, .. }));
    let alias = format!(
        "[[key]]\nid = \"cac-again\"\npublic = \"{}\"\nholder = \"the same\"\n[[grant]]\npolicies = [\"credit-via-bureau\"]\nkeys = [\"cac-2026\", \"cac-again\"]\nthreshold = 2\n",
        keys.cac.public()
    );
    let aliased = TrustPolicy::parse("t", &(trust_text(&keys, "") + &alias)).unwrap();
    assert!(
        matches!(refusal(&aliased, &credit), TrustError::BelowThreshold { .. }),
        "one key under two ids is one key"
    );

    // Signed only by a key the trust file does not list.
    let stranger = SecretKey::generate().unwrap();
    let unknown = bundle_dir(&scratch_dir("signed-grants-unknown"), "lawful-basis", None, &[&stranger]);
    assert!(matches!(refusal(&trust, &unknown), TrustError::UnknownKeys { .. }));
    let unsigned = bundle_dir(&scratch_dir("signed-grants-unsigned"), "lawful-basis", None, &[]);
    assert_eq!(refusal(&trust, &unsigned), TrustError::Unsigned);
}

#[test]
fn expired_and_revoked_keys_sign_nothing() {
    let keys = keys();
    let root = scratch_dir("signed-lapsed");
    let dir = bundle_dir(&root, "lawful-basis", None, &[&keys.cac]);
    let with_cac = |line: &str| {
        let text = trust_text(&keys, "")
            .replace("holder = \"Cyberspace Administration of China\"", &format!("holder = \"CAC\"\n{line}"));
        TrustPolicy::parse("t", &text).unwrap()
    };
    assert!(matches!(refusal(&with_cac("not_after = 2020-01-31"), &dir), TrustError::Expired { .. }));
    assert!(matches!(refusal(&with_cac("revoked = true"), &dir), TrustError::Revoked { .. }));
    with_cac("not_after = 2999-12-31").verify(&Bundle::from_dir(&dir).unwrap(), None).unwrap();
}

#[test]
fn bad_trust_files_are_refused_with_the_reason() {
    let keys = keys();
    for (broken, expected) in [
        (trust_text(&keys, "").replace("keys = [\"cac-2026\"]", "keys = [\"nobody\"]"), "no [[key]] defines"),
        (trust_text(&keys, "").replace("threshold = 2", "threshold = 3"), "threshold"),
        (trust_text(&keys, "").replace(&keys.cac.public().to_string(), "ed25519:00"), "64 hex digits"),
        (trust_text(&keys, "colour = \"blue\""), "unknown field"),
        (trust_text(&keys, "[minimum]\nlawful-basis = \"one\""), "not a semantic version"),
    ] {
        let err = TrustPolicy::parse("t", &broken).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

/// A trusted host over `root`, watching it and its trust file.
fn watched(
    keys: &Keys,
    name: &str,
) -> (PathBuf, PathBuf, Arc<Host>, std::sync::mpsc::Receiver<PolicyEvent>, flowgate::Watcher) {
    let root = scratch_dir(name);
    let policies = root.join("policies");
    bundle_dir(&policies, "credit-via-bureau", None, &[&keys.pboc, &keys.cac]);
    bundle_dir(&policies, "lawful-basis", None, &[&keys.cac]);
    let trust_file = root.join("trust.toml");
    std::fs::write(&trust_file, trust_text(keys, "")).unwrap();
    let host = Arc::new(Host::builder().policy_dir(&policies).trust_file(&trust_file).unwrap().build().unwrap());
    let events = host.subscribe();
    let watcher = host.watch(&policies).unwrap();
    (policies, trust_file, host, events, watcher)
}

fn next(events: &std::sync::mpsc::Receiver<PolicyEvent>) -> PolicyEvent {
    events.recv_timeout(Duration::from_secs(30)).expect("an event within 30 s")
}

fn version_of(host: &Host, name: &str) -> Option<String> {
    host.policies().into_iter().find(|p| p.info.name == name).map(|p| p.info.version.clone())
}

#[test]
fn a_trusted_host_refuses_unsigned_reloads_and_downgrades() {
    let keys = keys();
    let (policies, _, host, events, _watcher) = watched(&keys, "signed-reload");
    let manifest = flowgate_reference_set::manifest("lawful-basis").unwrap();

    // An unsigned new version: refused, the signed one keeps serving.
    let v2 = manifest.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(policies.join("lawful-basis").join(flowgate::MANIFEST_FILE), &v2).unwrap();
    std::fs::remove_file(policies.join("lawful-basis").join(flowgate::SIGNATURES_FILE)).unwrap();
    assert!(matches!(next(&events), PolicyEvent::Rejected { reason, .. } if reason.contains("unsigned")));
    assert_eq!(version_of(&host, "lawful-basis").as_deref(), Some("1.0.0"));

    // Signed, it activates; an older version signed afterwards is a downgrade.
    Bundle::sign_dir(policies.join("lawful-basis"), &keys.cac).unwrap();
    assert!(matches!(next(&events), PolicyEvent::Activated { policy, .. } if policy.version == "2.0.0"));
    bundle_dir(&policies, "lawful-basis", None, &[&keys.cac]);
    let rejected = next(&events);
    assert!(matches!(&rejected, PolicyEvent::Rejected { reason, .. } if reason.contains("downgrade")));
    // One line naming the bundle and its directory (not its module file), the reason said once.
    let line = rejected.to_string();
    let dir = policies.join("lawful-basis");
    assert!(line.starts_with(&format!("rejected lawful-basis 1.0.0 from `{}`: ", dir.display())), "{line}");
    assert_eq!(line.matches("a downgrade is refused").count(), 1, "{line}");
    assert!(!line.contains(flowgate::MODULE_FILE), "{line}");
    assert_eq!(version_of(&host, "lawful-basis").as_deref(), Some("2.0.0"));

    // Across restarts, the trust file's minimum keeps the floor.
    let floor = TrustPolicy::parse("t", &trust_text(&keys, "[minimum]\nlawful-basis = \"2.0.0\"")).unwrap();
    let err = Host::builder().policy_dir(&policies).trust(floor).build().unwrap_err();
    assert!(matches!(err, Error::Load(LoadError::Untrusted { source: TrustError::Downgrade { .. }, .. })), "{err}");
}

#[test]
fn required_policies_cannot_be_dropped_and_revocation_denies_their_flows() {
    let keys = keys();
    let direct = FlowRecord::from_json(DIRECT.as_bytes()).unwrap();
    let (policies, trust_file, host, events, _watcher) = watched(&keys, "signed-required");
    assert_eq!(host.evaluate(&direct).effect, Effect::Deny);

    // Deleting a required policy's directory drops nothing.
    std::fs::remove_dir_all(policies.join("credit-via-bureau")).unwrap();
    assert!(matches!(next(&events), PolicyEvent::Rejected { reason, .. } if reason.contains("requires it")));
    assert_eq!(version_of(&host, "credit-via-bureau").as_deref(), Some("1.0.0"));
    assert_eq!(host.evaluate(&direct).effect, Effect::Deny, "its flows are still denied, not allowed");

    // Revoking the PBoC's key deactivates it: its flows are denied, naming it.
    let before = host.policy_set();
    let revoked = trust_text(&keys, "")
        .replace("holder = \"People's Bank of China\"", "holder = \"People's Bank of China\"\nrevoked = true");
    std::fs::write(&trust_file, revoked).unwrap();
    assert!(matches!(next(&events), PolicyEvent::TrustChanged { .. }));
    assert!(matches!(next(&events), PolicyEvent::Deactivated { name, .. } if name == "credit-via-bureau"));
    assert_ne!(host.policy_set(), before, "the set's content id says a policy is deactivated");
    let decision = host.evaluate(&direct);
    assert_eq!(decision.effect, Effect::Deny);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.policy() == "credit-via-bureau" && r.message().contains("no longer meet the trust file")),
        "{}",
        decision.to_json()
    );
    let bureau = FlowRecord::from_json(br#"{"id":"b","platform":{"id":"p"},"action":"share","data":{"categories":["loan_record"]},"purpose":"credit_assessment","lawful_basis":"consent","consent":{"state":"given","kind":"separate"},"recipient":{"kind":"credit_bureau","id":"baihang","licence":"PBOC-CR-2018-001"}}"#).unwrap();
    assert_eq!(host.evaluate(&bureau).effect, Effect::Deny, "every flow in its scope, even one it allowed");

    // A host will not start without a required policy.
    std::fs::remove_dir_all(&policies).unwrap();
    std::fs::create_dir_all(policies.join("x")).unwrap();
    let err = Host::builder().policy_dir(&policies).trust(trust(&keys)).build().unwrap_err();
    assert!(matches!(err, Error::RequiredMissing(ref name) if name == "credit-via-bureau"), "{err}");
}

#[test]
fn the_policy_set_id_names_what_decides_on_any_machine() {
    let keys = keys();
    let root = scratch_dir("signed-provenance");
    bundle_dir(&root, "credit-via-bureau", None, &[&keys.pboc, &keys.cac]);
    bundle_dir(&root, "lawful-basis", None, &[&keys.cac]);
    let build = || Host::builder().policy_dir(&root).trust(trust(&keys)).build().unwrap();
    let (first, second) = (build(), build());
    assert_eq!(first.policy_set(), second.policy_set(), "the same files, the same id");
    assert_ne!(first.policy_set_version(), second.policy_set_version(), "activations still count");
    let decision = first.evaluate(&FlowRecord::from_json(DIRECT.as_bytes()).unwrap());
    assert_eq!(decision.policy_set, first.policy_set());

    // Another regulator's signature changes no decision, so not the id either.
    Bundle::sign_dir(root.join("lawful-basis"), &keys.pboc).unwrap();
    assert_eq!(build().policy_set(), first.policy_set());
    let manifest =
        flowgate_reference_set::manifest("lawful-basis").unwrap().replace("version = \"1.0.0\"", "version = \"1.0.1\"");
    bundle_dir(&root, "lawful-basis", Some(&manifest), &[&keys.cac]);
    assert_ne!(build().policy_set(), first.policy_set());
}

#[test]
fn the_cli_verifies_signs_and_refuses_to_run_unverified_without_saying_so() {
    let keys = keys();
    let root = scratch_dir("signed-cli");
    let (secret, _) = keys.cac.write_pair(&root, "cac-2026").unwrap();
    std::fs::write(root.join("pboc.key"), "").unwrap();
    let policies = root.join("policies");
    bundle_dir(&policies, "credit-via-bureau", None, &[&keys.pboc]);
    let lawful = bundle_dir(&policies, "lawful-basis", None, &[]);
    let trust_file = root.join("trust.toml");
    std::fs::write(&trust_file, trust_text(&keys, "")).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    let run =
        flowgate(&["sign", "--key", &path(&secret), &path(&lawful), &path(&policies.join("credit-via-bureau"))], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = flowgate(
        &["verify", "--trust", &path(&trust_file), &path(&lawful), &path(&policies.join("credit-via-bureau"))],
        b"",
    );
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("signed by cac-2026 (Cyberspace Administration of China), pboc-2026"),
        "{}",
        run.stdout
    );

    let run = flowgate(
        &["check", "--policies", &path(&policies), "--trust", &path(&trust_file), "--provenance", "-"],
        DIRECT.as_bytes(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let line: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(line["effect"], "deny");
    assert_eq!(line["provenance"]["policies"][0]["name"], "credit-via-bureau");
    assert_eq!(line["provenance"]["policy_set"].as_str().unwrap().len(), 64);

    let run = flowgate(&["check", "--policies", &path(&policies), "-"], DIRECT.as_bytes());
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("needs `--trust FILE`"), "{}", run.stderr);
    let run = flowgate(&["check", "--policies", &path(&policies), "--allow-unsigned", "-"], DIRECT.as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("are not verified (--allow-unsigned)"), "{}", run.stderr);

    std::fs::write(lawful.join(flowgate::MODULE_FILE), b"\0asm\x01\0\0\0").unwrap();
    let run = flowgate(&["verify", "--trust", &path(&trust_file), &path(&lawful)], b"");
    assert_eq!(run.status, 1);
    assert!(run.stdout.contains("REFUSED") && run.stdout.contains("tampered"), "{}", run.stdout);
    let run = flowgate(&["policies", "--policies", &path(&policies), "--trust", &path(&trust_file)], b"");
    assert_eq!(run.status, 2, "a tampered bundle stops the start: {}", run.stderr);
}
