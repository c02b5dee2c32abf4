//! Hot reload: through the API, through a watched directory, through the
//! CLI's watch mode, and under load from several threads.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use clap::Parser;
use flowgate::sdk::FlowRecord;
use flowgate::{Bundle, Error, Host, LoadError, PolicyEvent};
use flowgate_reference_set::sample;

use crate::{reference_builder, reference_bundles, scratch_dir};

/// The lawful-basis manifest under another version, optionally with a vector that cannot pass.
fn lawful_basis_manifest(version: &str, broken_vector: bool) -> String {
    let reference = flowgate_reference_set::manifest("lawful-basis").unwrap();
    let mut manifest = reference.replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
    if broken_vector {
        manifest.push_str(
            "\n[[test]]\nname = \"wrong on purpose\"\nrecord = { id = \"x\", platform = { id = \"p\" }, action = \"use\", data = { categories = [\"contact\"] }, purpose = \"service\" }\neffect = \"allow\"\n",
        );
    }
    manifest
}

/// The lawful-basis module.
fn lawful_basis_wasm() -> &'static [u8] {
    flowgate_reference_set::bundles().find(|(name, _, _)| *name == "lawful-basis").unwrap().2
}

/// A lawful-basis bundle under another version.
fn lawful_basis(version: &str, broken_vector: bool) -> Bundle {
    let manifest = lawful_basis_manifest(version, broken_vector);
    Bundle::from_bytes(&format!("lawful-basis-{version}"), &manifest, lawful_basis_wasm().to_vec()).unwrap()
}

fn write_bundle(dir: &Path, bundle: &Bundle, manifest: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(dir.join(flowgate::MODULE_FILE), &bundle.wasm).unwrap();
}

fn lawful_basis_version(host: &Host) -> Option<String> {
    host.policies().into_iter().find(|p| p.info.name == "lawful-basis").map(|p| p.info.version.clone())
}

/// Whether `err` refuses bytes for not being a Wasm module (the shape check
/// reads them before the compiler does).
fn not_a_module(err: &Error) -> bool {
    matches!(err, Error::Load(LoadError::InvalidModule { .. }) | Error::Load(LoadError::Shape { .. }))
}

/// Waits up to 30 s for an event that `wanted` accepts; returns every event seen.
fn wait_for(events: &Receiver<PolicyEvent>, wanted: impl Fn(&PolicyEvent) -> bool) -> Vec<PolicyEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = wanted(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("the expected event did not come; saw {seen:?}");
}

#[test]
fn the_api_replaces_rejects_and_removes() {
    let host = reference_builder().build().unwrap();
    let events = host.subscribe();
    let before = host.policy_set_version();

    host.load(&lawful_basis("1.0.1", false)).unwrap();
    assert!(matches!(events.try_recv(), Ok(PolicyEvent::Activated { policy, .. }) if policy.version == "1.0.1"));
    assert_eq!(lawful_basis_version(&host).as_deref(), Some("1.0.1"));
    assert!(host.policy_set_version() > before);

    let err = host.load(&lawful_basis("1.0.2", true)).unwrap_err();
    assert!(matches!(err, Error::Load(LoadError::VectorsFailed { .. })), "{err:?}");
    assert!(
        matches!(events.try_recv(), Ok(PolicyEvent::Rejected { reason, .. }) if reason.contains("wrong on purpose"))
    );
    assert_eq!(lawful_basis_version(&host).as_deref(), Some("1.0.1"), "the old version keeps serving");

    let garbage = Bundle::from_bytes("garbage", &lawful_basis_manifest("1.0.3", false), b"\0asm junk".to_vec());
    let err = host.load(&garbage.unwrap()).unwrap_err();
    assert!(not_a_module(&err), "{err:?}");
    assert!(matches!(events.try_recv(), Ok(PolicyEvent::Rejected { origin, .. }) if origin.contains("garbage")));
    assert_eq!(lawful_basis_version(&host).as_deref(), Some("1.0.1"));

    assert!(host.remove("lawful-basis"));
    assert!(matches!(events.try_recv(), Ok(PolicyEvent::Removed { name, .. }) if name == "lawful-basis"));
    assert_eq!(lawful_basis_version(&host), None);
    let decision = host.evaluate(
        &FlowRecord::from_json(
            br#"{"id":"r","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        )
        .unwrap(),
    );
    assert!(decision.answers.iter().all(|answer| answer.policy.name != "lawful-basis"));
}

#[test]
fn a_watched_directory_adds_replaces_and_removes() {
    let dir = scratch_dir("watched");
    let reference = flowgate_reference_set::manifest("lawful-basis").unwrap();
    let v1 = lawful_basis("1.0.0", false);
    write_bundle(&dir.join("lawful-basis"), &v1, reference);
    let host = Arc::new(Host::builder().policy_dir(&dir).build().unwrap());
    let events = host.subscribe();
    let _watcher = host.watch(&dir).unwrap();

    // Added: a bundle prepared beside the directory and renamed into it.
    let statutory = reference_bundles().into_iter().find(|b| b.manifest.name == "statutory-credit-reporting").unwrap();
    let staging = scratch_dir("watched-staging");
    write_bundle(&staging, &statutory, flowgate_reference_set::manifest("statutory-credit-reporting").unwrap());
    std::fs::rename(&staging, dir.join("statutory")).unwrap();
    wait_for(
        &events,
        |e| matches!(e, PolicyEvent::Activated { policy, .. } if policy.name == "statutory-credit-reporting"),
    );

    // A module left half-written is rejected and changes nothing; completing it loads it.
    let manifest_v2 = reference.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(dir.join("lawful-basis").join(flowgate::MANIFEST_FILE), &manifest_v2).unwrap();
    let module = dir.join("lawful-basis").join(flowgate::MODULE_FILE);
    std::fs::write(&module, &v1.wasm[..v1.wasm.len() / 2]).unwrap();
    wait_for(&events, |e| matches!(e, PolicyEvent::Rejected { .. }));
    assert_eq!(lawful_basis_version(&host).as_deref(), Some("1.0.0"));
    let mut file = std::fs::OpenOptions::new().append(true).open(&module).unwrap();
    file.write_all(&v1.wasm[v1.wasm.len() / 2..]).unwrap();
    drop(file);
    wait_for(&events, |e| matches!(e, PolicyEvent::Activated { policy, .. } if policy.version == "2.0.0"));
    assert_eq!(lawful_basis_version(&host).as_deref(), Some("2.0.0"));

    // Removed.
    std::fs::remove_dir_all(dir.join("statutory")).unwrap();
    wait_for(&events, |e| matches!(e, PolicyEvent::Removed { name, .. } if name == "statutory-credit-reporting"));
    assert_eq!(host.policies().len(), 1);
}

/// A writer the test can read while the CLI still writes to it.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(needle) {
            assert!(Instant::now() < deadline, "`{needle}` never appeared in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn check_watch_swaps_versions_on_a_running_stream() {
    let dir = scratch_dir("cli-watch");
    let reference = flowgate_reference_set::manifest("lawful-basis").unwrap();
    write_bundle(&dir.join("lawful-basis"), &lawful_basis("1.0.0", false), reference);

    let (reader, mut writer) = std::io::pipe().unwrap();
    let (stdout, stderr) = (SharedBuffer::default(), SharedBuffer::default());
    let args = ["flowgate", "check", "--watch", "--policies", dir.to_str().unwrap(), "--allow-unsigned", "-"];
    let cli = flowgate_cli::Cli::try_parse_from(args).unwrap();
    let running = {
        let (stdout, stderr) = (stdout.clone(), stderr.clone());
        std::thread::spawn(move || flowgate_cli::run(cli, std::io::BufReader::new(reader), stdout, stderr, false))
    };
    // No basis: lawful-basis denies, and its reason names its version.
    let line = |n: u32| {
        format!(
            "{{\"id\":\"w{n}\",\"platform\":{{\"id\":\"p\"}},\"action\":\"use\",\"data\":{{\"categories\":[\"contact\"]}},\"purpose\":\"service\"}}\n"
        )
    };
    for n in 0..5 {
        writer.write_all(line(n).as_bytes()).unwrap();
    }
    stdout.wait_for("\"id\":\"w4\"");
    let v2 = reference.replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    std::fs::write(dir.join("lawful-basis").join(flowgate::MANIFEST_FILE), v2).unwrap();
    stderr.wait_for("activated `lawful-basis` 1.1.0");
    for n in 5..10 {
        writer.write_all(line(n).as_bytes()).unwrap();
    }
    drop(writer);
    assert_eq!(running.join().unwrap(), 0, "{}", stderr.text());

    let versions: Vec<String> = stdout
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reasons"][0]["version"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(versions, [vec!["1.0.0"; 5], vec!["1.1.0"; 5]].concat(), "no line lost, each on one version");
}

/// Sets its flag when dropped, on success or while unwinding.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn reloads_under_load_never_fail_an_evaluation() {
    const RELOADS: u64 = 120;
    let cache = scratch_dir("stress-cache");
    let host = Arc::new(reference_builder().cache_dir(&cache).build().unwrap());
    let stop = AtomicBool::new(false);
    let evaluated = AtomicU64::new(0);
    // For each policy set version, the version and digest of each policy seen deciding under it.
    let sets: Mutex<HashMap<(u64, String), (String, flowgate::Digest)>> = Mutex::new(HashMap::new());
    let extra = {
        let manifest =
            flowgate_reference_set::manifest("regulator-jv").unwrap().replace("\"regulator-jv\"", "\"extra\"");
        let wasm = reference_bundles().into_iter().find(|b| b.manifest.name == "regulator-jv").unwrap().wasm;
        Bundle::from_bytes("extra", &manifest, wasm).unwrap()
    };

    let replaced = std::thread::scope(|scope| {
        // Stops the evaluating threads however this closure ends: a failed
        // assertion below must fail the test, not leave them spinning.
        let _stop = StopOnDrop(&stop);
        for thread in 0..3u64 {
            let (host, stop, evaluated, sets) = (&host, &stop, &evaluated, &sets);
            scope.spawn(move || {
                let flows = sample::flows(100 + thread, 64);
                let batch = 1 + thread as usize * 15;
                while !stop.load(Ordering::Relaxed) {
                    for chunk in flows.chunks(batch) {
                        let decisions = host.evaluate_batch(chunk);
                        assert_eq!(decisions.len(), chunk.len());
                        let set = decisions[0].activation;
                        let mut sets = sets.lock().unwrap();
                        for decision in &decisions {
                            assert_eq!(decision.activation, set, "a batch finishes on the set it started with");
                            for answer in &decision.answers {
                                assert!(answer.outcome.is_ok(), "no evaluation fails: {:?}", answer.outcome);
                                let policy = (answer.policy.version.clone(), answer.policy.digest);
                                let known =
                                    sets.entry((set, answer.policy.name.clone())).or_insert_with(|| policy.clone());
                                assert_eq!(*known, policy, "set {set} decides with one version of each policy");
                            }
                        }
                        evaluated.fetch_add(decisions.len() as u64, Ordering::Relaxed);
                    }
                }
            });
        }

        let mut replaced: Vec<Weak<flowgate::PolicyInfo>> = Vec::new();
        for n in 0..RELOADS {
            match n % 3 {
                0 => replaced.push(Arc::downgrade(&host.load(&lawful_basis(&format!("1.1.{n}"), false)).unwrap())),
                1 => {
                    let err = host.load(&lawful_basis(&format!("1.1.{n}"), true)).unwrap_err();
                    assert!(matches!(err, Error::Load(LoadError::VectorsFailed { .. })), "{err:?}");
                }
                _ => {
                    let garbage = Bundle::from_bytes("garbage", &lawful_basis_manifest("9.9.9", false), vec![0; 64]);
                    let err = host.load(&garbage.unwrap()).unwrap_err();
                    assert!(not_a_module(&err), "{err:?}");
                }
            }
            if n % 10 == 0 {
                host.load(&extra).unwrap();
            } else if n % 10 == 5 {
                assert!(host.remove("extra"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        replaced
    });

    assert!(evaluated.load(Ordering::Relaxed) > 0);
    let versions: std::collections::HashSet<u64> = sets.lock().unwrap().keys().map(|(set, _)| *set).collect();
    assert!(versions.len() > 10, "evaluations ran across many policy set versions");
    // Old versions are freed once no evaluation uses them: only the last stays.
    let alive = replaced.iter().filter(|version| version.upgrade().is_some()).count();
    assert_eq!(alive, 1, "every replaced version was freed");
    assert_eq!(lawful_basis_version(&host).as_deref(), Some(format!("1.1.{}", (RELOADS - 1) / 3 * 3).as_str()));
}
