//! A watched directory as an attacker arranges it: a policy's identity is
//! the name in its manifest, so a second directory cannot take a name that
//! another serves, a rename is a move (it keeps serving), a policy goes only
//! when no directory claims it, a FIFO cannot stall the watcher, and every
//! change to a bundle (its configuration included) is activated or rejected.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use flowgate::sdk::{Effect, FlowRecord};
use flowgate::{Host, PolicyEvent};

use crate::scratch_dir;

/// A credit flow `credit-via-bureau` denies: straight to a lender.
const DIRECT: &str = r#"{"id":"direct","platform":{"id":"p"},"action":"share","data":{"categories":["loan_record"]},"purpose":"credit_assessment","lawful_basis":"consent","consent":{"state":"given","kind":"separate","covers_purpose":true,"covers_recipient":true},"recipient":{"kind":"financial_institution"},"notice_given":true,"impact_assessment":true}"#;

fn write_reference(dir: &Path, name: &str, manifest: &str) {
    let (_, _, wasm) = flowgate_reference_set::bundles().find(|(n, _, _)| *n == name).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(dir.join(flowgate::MODULE_FILE), wasm).unwrap();
}

fn watched(name: &str) -> (std::path::PathBuf, Arc<Host>, Receiver<PolicyEvent>, flowgate::Watcher) {
    let dir = scratch_dir(name);
    write_reference(
        &dir.join("bureau"),
        "credit-via-bureau",
        flowgate_reference_set::manifest("credit-via-bureau").unwrap(),
    );
    let host = Arc::new(Host::builder().policy_dir(&dir).build().unwrap());
    let events = host.subscribe();
    let watcher = host.watch(&dir).unwrap();
    (dir, host, events, watcher)
}

/// The next event, within 30 s.
fn next(events: &Receiver<PolicyEvent>) -> PolicyEvent {
    events.recv_timeout(Duration::from_secs(30)).expect("an event within 30 s")
}

/// No event for a few quiet periods.
fn quiet(events: &Receiver<PolicyEvent>) {
    if let Ok(event) = events.recv_timeout(flowgate::testing::QUIET * 5) {
        panic!("unexpected event: {event}");
    }
}

fn direct_effect(host: &Host) -> Effect {
    host.evaluate(&FlowRecord::from_json(DIRECT.as_bytes()).unwrap()).effect
}

#[test]
fn a_second_directory_cannot_take_a_served_name() {
    let (dir, host, events, _watcher) = watched("identity-second");
    let version = |host: &Host| {
        host.policies().iter().find(|p| p.info.name == "credit-via-bureau").map(|p| p.info.version.clone())
    };
    let impostor = flowgate_reference_set::manifest("credit-via-bureau")
        .unwrap()
        .replace("version = \"1.0.0\"", "version = \"9.0.0\"");
    write_reference(&dir.join("impostor"), "credit-via-bureau", &impostor);
    match next(&events) {
        PolicyEvent::Rejected { origin, reason, .. } => {
            assert!(origin.ends_with("impostor"), "{origin}");
            assert!(reason.contains("is served from") && reason.contains("bureau"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(version(&host).as_deref(), Some("1.0.0"), "the serving directory keeps serving");

    // Once the original goes, the other directory's claim is the only one: it serves.
    std::fs::remove_dir_all(dir.join("bureau")).unwrap();
    match next(&events) {
        PolicyEvent::Activated { policy, .. } => assert_eq!(policy.version, "9.0.0"),
        other => panic!("{other}"),
    }
    assert_eq!(direct_effect(&host), Effect::Deny);
}

#[test]
fn a_renamed_bundle_keeps_serving_and_the_last_claim_removes() {
    let (dir, host, events, _watcher) = watched("identity-rename");
    assert_eq!(direct_effect(&host), Effect::Deny);
    std::fs::rename(dir.join("bureau"), dir.join("bureau-renamed")).unwrap();
    // Decided throughout the move, and never allowed.
    let until = Instant::now() + flowgate::testing::QUIET * 5;
    while Instant::now() < until {
        assert_eq!(direct_effect(&host), Effect::Deny);
    }
    quiet(&events);

    std::fs::remove_dir_all(dir.join("bureau-renamed")).unwrap();
    assert!(matches!(next(&events), PolicyEvent::Removed { name, .. } if name == "credit-via-bureau"));
    // Nothing covers the flow any more: denied, to fail closed, never allowed.
    assert_eq!(direct_effect(&host), Effect::Deny);
}

#[test]
fn a_fifo_cannot_stall_the_watcher_and_a_config_edit_is_not_ignored() {
    let (dir, host, events, _watcher) = watched("identity-fifo");
    let stuck = dir.join("stuck");
    std::fs::create_dir_all(&stuck).unwrap();
    std::fs::write(
        stuck.join(flowgate::MANIFEST_FILE),
        "name = \"stuck\"\nversion = \"1\"\nregulator = \"r\"\narticles = []\n",
    )
    .unwrap();
    assert!(std::process::Command::new("mkfifo").arg(stuck.join(flowgate::MODULE_FILE)).status().unwrap().success());
    assert!(matches!(next(&events), PolicyEvent::Rejected { reason, .. } if reason.contains("not a regular file")));

    // The same version with a tightened configuration is a different bundle: it is activated.
    let through_bureau = FlowRecord::from_json(br#"{"id":"b","platform":{"id":"p"},"action":"share","data":{"categories":["loan_record","location"]},"purpose":"credit_assessment","lawful_basis":"consent","consent":{"state":"given","kind":"separate"},"recipient":{"kind":"credit_bureau","id":"baihang","licence":"PBOC-CR-2018-001"}}"#).unwrap();
    assert_ne!(host.evaluate(&through_bureau).effect, Effect::Deny);
    let manifest = flowgate_reference_set::manifest("credit-via-bureau").unwrap();
    let tightened = manifest.replace(
        r#"prohibited_categories = ["religion", "biometric", "health"]"#,
        r#"prohibited_categories = ["religion", "biometric", "health", "location"]"#,
    );
    assert_ne!(tightened, manifest);
    std::fs::write(dir.join("bureau").join(flowgate::MANIFEST_FILE), tightened).unwrap();
    match next(&events) {
        PolicyEvent::Activated { policy, .. } => {
            assert_eq!((policy.name.as_str(), policy.version.as_str()), ("credit-via-bureau", "1.0.0"))
        }
        other => panic!("{other}"),
    }
    assert_eq!(host.evaluate(&through_bureau).effect, Effect::Deny, "the regulator's tightened rule applies");
}
