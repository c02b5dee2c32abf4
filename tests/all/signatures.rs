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

/// A trust file listing the CAC's public key under two ids (`first`, then
/// `second`, one of them with `line` added), and a grant for lawful-basis
/// naming `granted`.
fn aliased_trust(keys: &Keys, first: &str, second: &str, marked: &str, line: &str, granted: &[&str]) -> TrustPolicy {
    let entry = |id: &str| {
        let extra = if id == marked { format!("{line}\n") } else { String::new() };
        format!("[[key]]\nid = \"{id}\"\npublic = \"{}\"\nholder = \"CAC\"\n{extra}\n", keys.cac.public())
    };
    let granted: Vec<String> = granted.iter().map(|id| format!("\"{id}\"")).collect();
    let text = format!(
        "{}{}[[grant]]\npolicies = [\"lawful-basis\"]\nkeys = [{}]\n",
        entry(first),
        entry(second),
        granted.join(", ")
    );
    TrustPolicy::parse("t", &text).unwrap()
}

#[test]
fn a_key_is_its_public_key_under_every_id_and_in_every_order() {
    // The class: one public key listed under several ids, and a verdict
    // that must not depend on which id a grant names, which entry says
    // revoked or expired, or the order of the entries.
    let keys = keys();
    let root = scratch_dir("signed-aliases");
    let bundle = Bundle::from_dir(bundle_dir(&root, "lawful-basis", None, &[&keys.cac])).unwrap();
    let (a, b) = ("cac-2026", "cac-again");
    let mut cases = 0;
    for (first, second) in [(a, b), (b, a)] {
        for granted in [&[a][..], &[b], &[a, b]] {
            // Nothing lapsed: accepted whichever id the grant names, signed by the first id alphabetically.
            let signers = aliased_trust(&keys, first, second, a, "", granted).verify(&bundle, None).unwrap();
            assert_eq!(signers.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [a], "{first} {second} {granted:?}");
            for marked in [a, b] {
                let revoked = aliased_trust(&keys, first, second, marked, "revoked = true", granted);
                let err = revoked.verify(&bundle, None).unwrap_err();
                assert_eq!(
                    err,
                    TrustError::Revoked { key: marked.to_owned() },
                    "{first} {second} {granted:?} {marked}"
                );
                let expired = aliased_trust(&keys, first, second, marked, "not_after = 2020-01-31", granted);
                let err = expired.verify(&bundle, None).unwrap_err();
                assert!(matches!(err, TrustError::Expired { ref key, .. } if key == marked), "{err:?}");
                let both =
                    aliased_trust(&keys, first, second, marked, "revoked = true\nnot_after = 2999-01-01", granted);
                assert!(matches!(both.verify(&bundle, None), Err(TrustError::Revoked { .. })));
                cases += 3;
            }
        }
    }
    assert_eq!(cases, 36);

    // And so while running: revoking the key under its second name, in a
    // trust file the host follows, deactivates what it signed.
    let (policies, trust_file, host, events, _watcher) = watched(&keys, "signed-aliases-running");
    let _ = policies;
    let alias = format!(
        "[[key]]\nid = \"pboc-again\"\npublic = \"{}\"\nholder = \"the PBoC again\"\nrevoked = true\n",
        keys.pboc.public()
    );
    std::fs::write(&trust_file, trust_text(&keys, "") + &alias).unwrap();
    assert!(matches!(next(&events), PolicyEvent::TrustChanged { .. }));
    assert!(
        matches!(next(&events), PolicyEvent::Deactivated { name, reason } if name == "credit-via-bureau" && reason.contains("`pboc-again` that signed it is revoked"))
    );
    assert_eq!(host.evaluate(&FlowRecord::from_json(DIRECT.as_bytes()).unwrap()).effect, Effect::Deny);
}

#[test]
fn entries_that_match_no_policy_are_reported_at_start_and_refused_by_verify_strict() {
    let keys = keys();
    let root = scratch_dir("signed-unmatched");
    let policies = root.join("policies");
    bundle_dir(&policies, "credit-via-bureau", None, &[&keys.pboc, &keys.cac]);
    let lawful = bundle_dir(&policies, "lawful-basis", None, &[&keys.cac]);
    let trust_file = root.join("trust.toml");
    // A typo in a minimum (so lawful-basis has no floor), and a grant for a name no bundle has.
    let typos = "[minimum]\nlawful-basic = \"1.0.0\"\n\n[[grant]]\npolicies = [\"credti-*\"]\nkeys = [\"cac-2026\"]\n";
    std::fs::write(&trust_file, trust_text(&keys, "") + typos).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    let run = flowgate(&["check", "--policies", &path(&policies), "--trust", &path(&trust_file), "-"], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("warning: trust file: [minimum] names `lawful-basic`"), "{}", run.stderr);
    assert!(run.stderr.contains("warning: trust file: grant 3: `credti-*` matches none"), "{}", run.stderr);
    assert!(run.stderr.contains("warning: trust file: grant 2: `cross-border` matches none"), "{}", run.stderr);

    let bundles = [path(&lawful), path(&policies.join("credit-via-bureau"))];
    let verify = |strict: bool| {
        let mut args = vec!["verify", "--trust", trust_file.to_str().unwrap()];
        if strict {
            args.push("--strict");
        }
        args.extend(bundles.iter().map(String::as_str));
        flowgate(&args, b"")
    };
    let lenient = verify(false);
    assert_eq!(lenient.status, 0, "{}", lenient.stdout);
    assert!(lenient.stdout.contains("note    trust file: [minimum] names `lawful-basic`"), "{}", lenient.stdout);
    let strict = verify(true);
    assert_eq!(strict.status, 1, "{}", strict.stdout);
    for expected in ["REFUSED trust file: [minimum] names `lawful-basic`", "REFUSED trust file: grant 3: `credti-*`"] {
        assert!(strict.stdout.contains(expected), "{expected}: {}", strict.stdout);
    }
    // Without the typos and the grant for a policy not here, --strict passes.
    std::fs::write(&trust_file, trust_text(&keys, "").replace(", \"cross-border\"", "")).unwrap();
    let clean = verify(true);
    assert_eq!(clean.status, 0, "{}", clean.stdout);

    // A name no policy could have is refused outright, at start too.
    std::fs::write(&trust_file, trust_text(&keys, "[minimum]\nLawful-Basis = \"1.0.0\"")).unwrap();
    let run = flowgate(&["check", "--policies", &path(&policies), "--trust", &path(&trust_file), "-"], b"");
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("could name no policy"), "{}", run.stderr);
}

#[test]
fn a_glob_full_of_stars_is_matched_at_once() {
    let keys = keys();
    let root = scratch_dir("signed-glob");
    let dir = bundle_dir(&root, "lawful-basis", None, &[&keys.cac]);
    let stars = "*a".repeat(40) + "*b";
    let text = trust_text(&keys, "").replace(
        "policies = [\"lawful-basis\", \"cross-border\"]",
        &format!("policies = [\"{stars}\", \"lawful-basis\"]"),
    );
    let trust = TrustPolicy::parse("t", &text).unwrap();
    let bundle = Bundle::from_dir(&dir).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        trust.verify(&bundle, None).unwrap();
        assert_eq!(trust.unmatched(["a".repeat(64).as_str()]).len(), 4, "required, and three patterns");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

/// Kubernetes' layout for a mounted ConfigMap or Secret: `dir/NAME ->
/// ..data/NAME`, `..data -> ..VERSION/`; a new version is a new directory
/// and `..data` swapped to it atomically (by renaming a new link over it).
fn kubernetes_swap(dir: &Path, version: &str, name: &str, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).unwrap();
    std::fs::write(versioned.join(name), text).unwrap();
    std::fs::set_permissions(versioned.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    let staged = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(format!("..{version}"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
    if std::fs::symlink_metadata(dir.join(name)).is_err() {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
}

#[test]
fn trust_files_reached_through_links_are_followed_as_kubernetes_swaps_them() {
    let keys = keys();
    let root = scratch_dir("signed-links");
    let policies = root.join("policies");
    bundle_dir(&policies, "credit-via-bureau", None, &[&keys.pboc, &keys.cac]);
    bundle_dir(&policies, "lawful-basis", None, &[&keys.cac]);
    let mounted = root.join("trust");
    kubernetes_swap(&mounted, "2026_01_01", "trust.toml", &trust_text(&keys, ""), 0o644);
    let trust_file = mounted.join("trust.toml");
    let host = Arc::new(Host::builder().policy_dir(&policies).trust_file(&trust_file).unwrap().build().unwrap());
    let events = host.subscribe();
    let _watcher = host.watch(&policies).unwrap();

    // A swap that links to a file others may write is refused; the trust in force stays.
    kubernetes_swap(&mounted, "2026_01_02", "trust.toml", &trust_text(&keys, "# changed"), 0o666);
    assert!(
        matches!(next(&events), PolicyEvent::Rejected { reason, .. } if reason.contains("has mode 666") && reason.contains("trust policy in force stays"))
    );
    // A revocation delivered by a swap is applied: the revoked key's policy is deactivated.
    let revoked = trust_text(&keys, "")
        .replace("holder = \"People's Bank of China\"", "holder = \"People's Bank of China\"\nrevoked = true");
    kubernetes_swap(&mounted, "2026_01_03", "trust.toml", &revoked, 0o644);
    assert!(matches!(next(&events), PolicyEvent::TrustChanged { .. }));
    assert!(matches!(next(&events), PolicyEvent::Deactivated { name, .. } if name == "credit-via-bureau"));

    // At start: a link is followed to a safe file, and refused to an unsafe one.
    let err = |mode: u32| {
        kubernetes_swap(&mounted, &format!("mode-{mode:o}"), "trust.toml", &trust_text(&keys, ""), mode);
        Host::builder().trust_file(&trust_file).map(|_| ()).map_err(|err| err.to_string())
    };
    assert_eq!(err(0o644), Ok(()));
    assert_eq!(err(0o400), Ok(()));
    assert!(err(0o664).unwrap_err().contains("has mode 664; group and others must not be able to write it"));
    kubernetes_swap(&mounted, "foreign", "trust.toml", &trust_text(&keys, ""), 0o644);
    std::os::unix::fs::chown(mounted.join("..foreign").join("trust.toml"), Some(65534), None).unwrap();
    let foreign = Host::builder().trust_file(&trust_file).map(|_| ()).unwrap_err().to_string();
    assert!(foreign.contains("belongs to user 65534"), "{foreign}");
    // A link to something that is not a regular file.
    std::fs::remove_file(&trust_file).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &trust_file).unwrap();
    assert!(Host::builder().trust_file(&trust_file).unwrap_err().to_string().contains("not a regular file"));
}

/// The first event `wanted` accepts, within 30 s (others are skipped).
fn until(events: &std::sync::mpsc::Receiver<PolicyEvent>, wanted: impl Fn(&PolicyEvent) -> bool) -> PolicyEvent {
    loop {
        let event = next(events);
        if wanted(&event) {
            return event;
        }
    }
}

#[test]
fn a_policy_removed_and_added_again_cannot_come_back_older() {
    let keys = keys();
    let (policies, _, host, events, _watcher) = watched(&keys, "signed-floor");
    let manifest = flowgate_reference_set::manifest("lawful-basis").unwrap();
    let v2 = manifest.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    bundle_dir(&policies, "lawful-basis", Some(&v2), &[&keys.cac]);
    until(&events, |e| matches!(e, PolicyEvent::Activated { policy, .. } if policy.version == "2.0.0"));
    // Deleting the directory removes it (it is not required)...
    std::fs::remove_dir_all(policies.join("lawful-basis")).unwrap();
    until(&events, |e| matches!(e, PolicyEvent::Removed { name, .. } if name == "lawful-basis"));
    assert_eq!(version_of(&host, "lawful-basis"), None);
    // ...but the version served is still the floor: 1.0.0, validly signed, is a downgrade.
    bundle_dir(&policies, "lawful-basis", None, &[&keys.cac]);
    let refused = until(&events, |e| matches!(e, PolicyEvent::Rejected { reason, .. } if !reason.contains("unsigned")));
    assert!(
        matches!(&refused, PolicyEvent::Rejected { reason, .. } if reason.contains("older than 2.0.0 (a version already served)")),
        "{refused}"
    );
    assert_eq!(version_of(&host, "lawful-basis"), None);
    // The same version, or a newer one, comes back.
    bundle_dir(&policies, "lawful-basis", Some(&v2), &[&keys.cac]);
    until(&events, |e| matches!(e, PolicyEvent::Activated { policy, .. } if policy.version == "2.0.0"));
    assert_eq!(version_of(&host, "lawful-basis").as_deref(), Some("2.0.0"));
    // Through the API too.
    let older = bundle_dir(&scratch_dir("signed-floor-old"), "lawful-basis", None, &[&keys.cac]);
    let direct = host.load(&Bundle::from_dir(older).unwrap());
    assert!(matches!(direct, Err(Error::Load(LoadError::Untrusted { source: TrustError::Downgrade { .. }, .. }))));
}
