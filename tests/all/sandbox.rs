//! Adversarial guests (`tests/fixtures/*.wat` and a panicking Rust policy):
//! every misbehaviour is refused at load with an error naming the file and
//! what was expected, or becomes a `deny` for that record only, naming the
//! policy and the fault; the next record is evaluated normally.

use std::time::{Duration, Instant};

use flowgate::sdk::wire::WireError;
use flowgate::sdk::{Effect, FlowRecord};
use flowgate::testing::TICK;
use flowgate::{AnswerError, Bundle, Error, Fault, Host, Limits, LoadError, Quarantine};

use crate::{flowgate, reference_bundles, repo_path, scratch_dir};

/// A record every guest misbehaves on: an export.
const EXPORT: &str = r#"{"id":"export","platform":{"id":"didi"},"action":"export","data":{"categories":["contact"]},"purpose":"service","destination":"SG","lawful_basis":"contract","impact_assessment":true}"#;
/// A record no guest misbehaves on; lawful-basis allows it.
const USE: &str = r#"{"id":"use","platform":{"id":"didi"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#;

fn flow(json: &str) -> FlowRecord {
    FlowRecord::from_json(json.as_bytes()).unwrap()
}

fn manifest(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"0.0.1\"\nregulator = \"nobody\"\narticles = []\n")
}

/// The bytes of a `.wat` fixture.
pub fn wat_module(fixture: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(repo_path(&format!("tests/fixtures/{fixture}.wat"))).unwrap();
    wat::parse_str(crate::with_schema(&text)).unwrap()
}

fn bundle(fixture: &str, wasm: Vec<u8>) -> Result<Bundle, Error> {
    Ok(Bundle::from_bytes(&format!("fixtures/{fixture}"), &manifest("hostile"), wasm)?)
}

fn lawful_basis() -> Bundle {
    reference_bundles().into_iter().find(|b| b.manifest.name == "lawful-basis").unwrap()
}

/// A host with lawful-basis and the hostile guest.
fn host_with(fixture: &str, wasm: Vec<u8>) -> Result<Host, Error> {
    Host::builder().bundle(lawful_basis()).bundle(bundle(fixture, wasm)?).build()
}

/// Loads a `.wat` guest that misbehaves on exports and checks the fault,
/// the deny, the fault count, and that the next record is fine.
fn assert_fault(fixture: &str, wasm: Vec<u8>, expected: impl Fn(&Fault) -> bool) {
    let host = host_with(fixture, wasm).unwrap_or_else(|err| panic!("{fixture}: {err}"));

    let decision = host.evaluate(&flow(EXPORT));
    assert_eq!(decision.effect, Effect::Deny, "{fixture}");
    let hostile = decision.answers.iter().find(|a| a.policy.name == "hostile").unwrap();
    let fault = hostile.outcome.clone().expect_err(fixture);
    assert!(expected(&fault), "{fixture}: unexpected fault {fault:?}");
    let reason = decision.reasons.iter().find(|r| r.policy() == "hostile").unwrap();
    assert_eq!(reason.rule(), "policy-fault");
    assert!(reason.message().contains(&fault.to_string()), "{}", reason.message());

    let next = host.evaluate(&flow(USE));
    assert_eq!(next.effect, Effect::Allow, "{fixture}: the next record is evaluated normally");
    assert!(next.answers.iter().all(|a| a.policy.name != "hostile"), "{fixture}: it answers not_applicable");
    let status = host.policies().into_iter().find(|p| p.info.name == "hostile").unwrap();
    assert_eq!((status.faults, status.quarantined), (1, false), "{fixture}");
}

fn assert_wat_fault(fixture: &str, expected: impl Fn(&Fault) -> bool) {
    assert_fault(fixture, wat_module(fixture), expected);
}

/// How late a deadline may fire: a guard against a hang on a busy machine,
/// not a benchmark.
const LATENESS: Duration = Duration::from_secs(2);

/// Runs `work` on its own thread and waits at most `bound` for it, so a
/// deadline that never fires fails the test instead of hanging it. Returns
/// the result and how long it took.
fn within<T: Send + 'static>(bound: Duration, work: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || sender.send(work()));
    let result = receiver.recv_timeout(bound).unwrap_or_else(|_| panic!("nothing came back within {bound:?}"));
    (result, started.elapsed())
}

/// Asks `host` about the export record, on which the hostile guest loops:
/// its fault must be the deadline of `deadline_ms`, arriving no earlier than
/// that and not much later.
fn assert_deadline_in_time(host: Host, deadline_ms: u64) {
    let deadline = Duration::from_millis(deadline_ms);
    let (decision, elapsed) = within(deadline + LATENESS, move || host.evaluate(&flow(EXPORT)));
    let hostile = decision.answers.iter().find(|a| a.policy.name == "hostile").expect("the hostile policy answered");
    assert_eq!(hostile.outcome, Err(Fault::Deadline(deadline_ms)));
    assert_eq!(decision.effect, Effect::Deny);
    // The ticker advances the epoch at most once per tick, the first tick
    // possibly at once: the deadline cannot fire before one tick less.
    assert!(elapsed + TICK >= deadline, "a {deadline_ms} ms deadline fired after {elapsed:?}");
}

#[test]
fn endless_loop_in_evaluation_hits_the_deadline() {
    let default = Limits::default().deadline_ms;
    assert_deadline_in_time(host_with("loop-evaluate", wat_module("loop-evaluate")).unwrap(), default);
    assert_wat_fault("loop-evaluate", |f| *f == Fault::Deadline(default));
}

#[test]
fn a_short_deadline_from_the_manifest_fires_in_time() {
    for deadline_ms in [1, 5, 20] {
        let manifest = format!("{}[limits]\ndeadline_ms = {deadline_ms}\n", manifest("hostile"));
        let bundle = Bundle::from_bytes("fixtures/loop-evaluate", &manifest, wat_module("loop-evaluate")).unwrap();
        assert_deadline_in_time(Host::builder().bundle(bundle).build().unwrap(), deadline_ms);
    }
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    assert_wat_fault("memory-bomb", |f| *f == Fault::MemoryLimit(Limits::default().memory_bytes));
}

#[test]
fn deep_recursion_overflows_the_stack() {
    assert_wat_fault("deep-recursion", |f| *f == Fault::StackOverflow);
}

#[test]
fn unreachable_is_a_fault() {
    assert_wat_fault("unreachable", |f| *f == Fault::Unreachable);
}

#[test]
fn a_trap_is_a_fault() {
    assert_wat_fault("divide-by-zero", |f| matches!(f, Fault::Trap(m) if m.contains("divide by zero")));
}

#[test]
fn a_rust_panic_is_a_fault() {
    assert_fault("panicking-policy", flowgate_tests::fixtures::PANICKING_POLICY.to_vec(), |f| *f == Fault::Unreachable);
}

#[test]
fn an_answer_outside_memory_is_a_fault() {
    assert_wat_fault("answer-out-of-bounds", |f| matches!(f, Fault::BadAnswer(AnswerError::OutsideMemory { .. })));
}

#[test]
fn an_oversized_answer_is_a_fault() {
    // More answers than records: refused before any is read.
    assert_wat_fault("answer-oversized", |f| {
        matches!(f, Fault::BadAnswer(AnswerError::WrongCount { found: 10_000_000, expected: 1 }))
    });
}

#[test]
fn invalid_codes_in_an_answer_are_faults() {
    assert_wat_fault("answer-bad-effect", |f| {
        matches!(f, Fault::BadAnswer(AnswerError::Malformed(WireError("answer effect"))))
    });
    assert_wat_fault("answer-bad-obligation", |f| {
        matches!(f, Fault::BadAnswer(AnswerError::Malformed(WireError("answer obligations"))))
    });
    assert_wat_fault("answer-unknown-rule", |f| matches!(f, Fault::BadAnswer(AnswerError::UnknownRule { .. })));
    assert_wat_fault(
        "answer-inconsistent",
        |f| matches!(f, Fault::BadAnswer(AnswerError::Malformed(WireError(m))) if m.contains("contradict")),
    );
}

#[test]
fn a_fault_denies_only_its_own_record_in_a_batch() {
    let host = host_with("unreachable", wat_module("unreachable")).unwrap();
    let decisions = host.evaluate_batch(&[flow(USE), flow(EXPORT), flow(USE)]);
    let effects: Vec<Effect> = decisions.iter().map(|d| d.effect).collect();
    assert_eq!(effects, [Effect::Allow, Effect::Deny, Effect::Allow]);
}

#[test]
fn a_policy_that_keeps_faulting_is_quarantined_until_replaced() {
    let host = Host::builder()
        .bundle(lawful_basis())
        .bundle(bundle("unreachable", wat_module("unreachable")).unwrap())
        .quarantine_after(3)
        .build()
        .unwrap();
    // Three distinct records (one record sent again and again proves nothing new).
    for n in 0..3 {
        let export = EXPORT.replace("\"id\":\"export\"", &format!("\"id\":\"export-{n}\""));
        assert_eq!(host.evaluate(&flow(&export)).effect, Effect::Deny);
    }
    let quarantined = host.evaluate(&flow(USE));
    assert_eq!(quarantined.effect, Effect::Deny);
    let hostile = quarantined.answers.iter().find(|a| a.policy.name == "hostile").unwrap();
    assert_eq!(hostile.outcome, Err(Fault::Quarantined(Quarantine::Faults(3))));
    let status = host.policies().into_iter().find(|p| p.info.name == "hostile").unwrap();
    assert!(status.quarantined);
    assert_eq!(status.faults, 3);

    host.load(&bundle("good", wat_module("good")).unwrap()).unwrap();
    assert_eq!(host.evaluate(&flow(USE)).effect, Effect::Allow);
    let export = host.evaluate(&flow(EXPORT));
    assert!(export.answers.iter().all(|a| a.policy.name != "hostile"), "the new version applies to nothing");
    assert!(!host.policies().into_iter().find(|p| p.info.name == "hostile").unwrap().quarantined);
}

#[test]
fn an_endless_start_function_is_refused_at_load() {
    let default = Limits::default().deadline_ms;
    let bound = Duration::from_millis(default) + LATENESS;
    let (refused, elapsed) = within(bound, || host_with("loop-start", wat_module("loop-start")).err());
    let err = refused.expect("refused");
    assert!(
        matches!(&err, Error::Load(LoadError::Start { source: Fault::Deadline(ms), .. }) if *ms == default),
        "{err:?}"
    );
    assert!(err.to_string().contains("fixtures/loop-start"), "{err}");
    assert!(elapsed + TICK >= Duration::from_millis(default), "the deadline fired after {elapsed:?}");

    // A short deadline from the manifest bounds the start function too.
    let manifest = format!("{}[limits]\ndeadline_ms = 5\n", manifest("hostile"));
    let bundle = Bundle::from_bytes("fixtures/loop-start", &manifest, wat_module("loop-start")).unwrap();
    let (refused, _) = within(Duration::from_millis(5) + LATENESS, || Host::builder().bundle(bundle).build().err());
    let err = refused.expect("refused");
    assert!(matches!(&err, Error::Load(LoadError::Start { source: Fault::Deadline(5), .. })), "{err:?}");
}

#[test]
fn imports_are_refused_at_load() {
    for (fixture, module, name) in
        [("import-wasi", "wasi_snapshot_preview1", "fd_write"), ("import-unknown", "env", "current_time")]
    {
        let err = host_with(fixture, wat_module(fixture)).err().expect("refused");
        let text = err.to_string();
        assert!(
            matches!(&err, Error::Load(LoadError::ForbiddenImport { module: m, name: n, .. }) if m == module && n == name),
            "{err:?}"
        );
        assert!(text.contains(fixture) && text.contains(&format!("`{module}::{name}`")), "{text}");
    }
}

#[test]
fn missing_or_mistyped_exports_are_refused_at_load() {
    let err = host_with("missing-export", wat_module("missing-export")).err().expect("refused");
    assert!(
        matches!(&err, Error::Load(LoadError::BadExport { name: "flowgate_evaluate", found, .. }) if found == "nothing"),
        "{err:?}"
    );
    let err = host_with("wrong-signature", wat_module("wrong-signature")).err().expect("refused");
    assert!(
        matches!(&err, Error::Load(LoadError::BadExport { name: "flowgate_evaluate", found, .. }) if found.contains("i64")),
        "{err:?}"
    );
    assert!(err.to_string().contains("expected a function `(i32) -> i64`"), "{err}");
}

#[test]
fn another_abi_version_is_refused_at_load() {
    let err = host_with("wrong-abi-version", wat_module("wrong-abi-version")).err().expect("refused");
    assert!(matches!(err, Error::Load(LoadError::AbiVersion { found: 4, expected: 3, .. })), "{err:?}");
    assert!(err.to_string().contains("version 4; this host speaks version 3"), "{err}");
}

/// Older modules are refused for their version, asked before any export is
/// looked up, with how to rebuild: ABI 1 had no `flowgate_schema`, ABI 2
/// wrote its answers as a stream and read records into a decoded copy (its
/// exports have the names and types of version 3's).
#[test]
fn a_module_of_an_older_abi_is_told_to_rebuild_not_which_export_it_lacks() {
    for (fixture, found) in [("abi-1", 1), ("abi-2", 2)] {
        let err = host_with(fixture, wat_module(fixture)).err().expect("refused");
        assert!(
            matches!(err, Error::Load(LoadError::AbiVersion { found: f, expected: 3, .. }) if f == found),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("speaks Flowgate ABI version {found}; this host speaks version 3")),
            "{message}"
        );
        assert!(
            message.contains("rebuild the policy against flowgate-sdk") && message.contains("flowgate build"),
            "{message}"
        );
    }
}

#[test]
fn a_malformed_schema_is_refused_naming_what_is_wrong() {
    let good = std::fs::read_to_string(crate::repo_path("tests/fixtures/good.wat")).unwrap();
    let schema = crate::with_schema("{{SCHEMA}}");
    // Same length, one word garbled: `religion` spelled in capitals.
    let garbled = schema.replace(
        &"religion".bytes().map(|b| format!("\\{b:02x}")).collect::<String>(),
        &"RELIGION".bytes().map(|b| format!("\\{b:02x}")).collect::<String>(),
    );
    assert_ne!(garbled, schema);
    let wat = crate::with_schema(&good.replace("{{SCHEMA}}", &garbled));
    let err = host_with("garbled", wat::parse_str(wat).unwrap()).err().expect("refused");
    assert!(matches!(&err, Error::Load(LoadError::Schema { .. })), "{err:?}");
    assert!(err.to_string().contains("`RELIGION` is not a word"), "{err}");
}

#[test]
fn malformed_and_truncated_modules_are_refused_at_load() {
    let good = wat_module("good");
    for wasm in [good[..good.len() / 2].to_vec(), b"\0asm\x01\0\0\0garbage".to_vec(), b"not wasm at all".to_vec()] {
        let err = host_with("broken", wasm).err().expect("refused");
        assert!(matches!(err, Error::Load(LoadError::InvalidModule { .. })), "{err:?}");
        assert!(err.to_string().contains("fixtures/broken/policy.wasm"), "{err}");
    }
}

#[test]
fn bad_manifests_are_refused_with_the_field() {
    let wasm = wat_module("good");
    let err = Bundle::from_bytes("m", "name = \"x\"\nversion = 1\nregulator = \"r\"\narticles = []\n", wasm.clone())
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid type: integer `1`, expected a string"), "{err:?}");
    assert!(err.to_string().contains("m/manifest.toml"), "{err}");
    let err = Bundle::from_bytes("m", &format!("{}colour = \"red\"\n", manifest("x")), wasm.clone()).unwrap_err();
    assert!(format!("{err:?}").contains("unknown field `colour`"), "{err:?}");
    let err = Bundle::from_bytes("m", &format!("{}[limits]\ndeadline = 5\n", manifest("x")), wasm).unwrap_err();
    assert!(format!("{err:?}").contains("unknown field `deadline`"), "{err:?}");
}

#[test]
fn manifest_limits_override_the_defaults() {
    let manifest = format!("{}[limits]\ndeadline_ms = 5\nmemory_bytes = 1048576\n", manifest("hostile"));
    let host = Host::builder()
        .bundle(Bundle::from_bytes("fixtures/memory-bomb", &manifest, wat_module("memory-bomb")).unwrap())
        .build()
        .unwrap();
    let status = &host.policies()[0];
    assert_eq!((status.limits.deadline_ms, status.limits.memory_bytes), (5, 1 << 20));
    let decision = host.evaluate(&flow(EXPORT));
    assert_eq!(decision.answers[0].outcome, Err(Fault::MemoryLimit(1 << 20)));
}

#[test]
fn check_answers_every_record_beside_a_hostile_policy() {
    let dir = scratch_dir("hostile-beside-reference");
    for bundle in reference_bundles().into_iter().chain([bundle("unreachable", wat_module("unreachable")).unwrap()]) {
        let target = dir.join(&bundle.manifest.name);
        std::fs::create_dir_all(&target).unwrap();
        let manifest =
            flowgate_reference_set::manifest(&bundle.manifest.name).map_or_else(|| manifest("hostile"), str::to_owned);
        std::fs::write(target.join(flowgate::MANIFEST_FILE), manifest).unwrap();
        std::fs::write(target.join(flowgate::MODULE_FILE), &bundle.wasm).unwrap();
    }
    let vectors = std::fs::read(repo_path("examples/spec-vectors.jsonl")).unwrap();
    let alone = flowgate(&["check", "-"], &vectors);
    // The baseline: the reference set alone decides all 15, none by a fault.
    assert_eq!(alone.status, 0, "{}", alone.stderr);
    assert_eq!(alone.stdout.lines().count(), 15);
    assert!(!alone.stdout.contains("policy-fault"), "{}", alone.stdout);
    let beside = flowgate(&["check", "--policies", dir.to_str().unwrap(), "--allow-unsigned", "-"], &vectors);
    assert_eq!(beside.status, 0, "{}", beside.stderr);
    assert_eq!(beside.stdout.lines().count(), 15);
    for (without, with) in alone.stdout.lines().zip(beside.stdout.lines()) {
        let without: serde_json::Value = serde_json::from_str(without).unwrap();
        let with: serde_json::Value = serde_json::from_str(with).unwrap();
        let exported = ["v10", "v11"].contains(&with["id"].as_str().unwrap());
        if exported {
            assert_eq!(with["effect"], "deny");
            assert!(
                with["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["policy"] == "hostile" && r["rule"] == "policy-fault")
            );
        } else {
            assert_eq!(with, without, "records the hostile policy does not fault on decide as before");
        }
    }
}
