//! The decision log of the real binary, killed with SIGKILL at random
//! points and run out of disk: the log recovers and verifies, and every
//! decision printed has its receipt.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowgate::{Audit, PublicKey, Verified};

fn flowgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowgate"))
}

/// `command` given the arguments of `flowgate check` deciding `input` with
/// receipts in `log`, signed with `secret`, after `extra` options.
fn logged_check<'a>(
    command: &'a mut Command,
    extra: &[&str],
    log: &Path,
    secret: &Path,
    input: &Path,
) -> &'a mut Command {
    command.args(["check", "--no-progress"]).args(extra).arg("--log").arg(log).arg("--log-key").arg(secret).arg(input)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-receipts-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A key pair in `dir`: the secret's path and the public key.
fn key_pair(dir: &Path) -> (PathBuf, PublicKey) {
    let status = flowgate().args(["key", "new", "platform", "--out"]).arg(dir).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    (dir.join("platform.key"), PublicKey::read(&dir.join("platform.pub")).unwrap())
}

/// A JSON Lines file of `count` records with ids `{seed}-{n}`.
fn records(dir: &Path, seed: u64, count: usize) -> PathBuf {
    let path = dir.join(format!("records-{seed}.jsonl"));
    let text: String = flowgate_reference_set::sample::flows(seed, count).iter().map(|f| f.to_json() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The ids of the whole decision lines in `stdout`.
fn decided_ids(stdout: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stdout);
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole.lines().map(|line| line.strip_prefix("{\"id\":\"").unwrap().split('"').next().unwrap().to_owned()).collect()
}

/// The flow of every receipt in the log.
fn logged_flows(log: &Path) -> HashSet<String> {
    let mut flows = HashSet::new();
    for entry in std::fs::read_dir(log).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap().starts_with("segment-") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(rest) = line.split("\"flow\":\"").nth(1) {
                    flows.insert(rest.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    flows
}

fn verify(log: &Path, key: &PublicKey) -> Verified {
    Audit::open(log).unwrap().verify(key, &[]).unwrap()
}

/// The log's segments, and the newest one's size.
fn segments(log: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(log) else { return (0, 0) };
    let mut found: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("segment-")))
        .collect();
    found.sort_by_key(|e| e.file_name());
    (found.len(), found.last().and_then(|e| e.metadata().ok()).map_or(0, |m| m.len()))
}

#[test]
fn killed_at_random_points_the_log_recovers_and_every_printed_decision_has_its_receipt() {
    let dir = scratch("kill");
    let (secret, public) = key_pair(&dir);
    let log = dir.join("log");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let (mut killed_mid_run, mut torn, mut printed) = (0, 0, 0);
    for round in 0..8u64 {
        let input = records(&dir, 100 + round, 25_000);
        let durability = if round % 2 == 0 { "fsync" } else { "buffered" };
        let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
        let mut child = logged_check(&mut flowgate(), &["--durability", durability], &log, &secret, &input)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until receipts are being written, then a random while longer.
        let started = Instant::now();
        let (before, _) = segments(&log);
        while !matches!(segments(&log), (count, bytes) if count > before && bytes > 0)
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 250));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        killed_mid_run += u32::from(!status.success());

        let ids = decided_ids(&std::fs::read(dir.join("stdout")).unwrap());
        printed += ids.len();
        let verified = verify(&log, &public);
        assert_eq!(verified.broken, None, "round {round}: {verified:?}");
        torn += u32::from(verified.torn.is_some());
        let flows = logged_flows(&log);
        let missing: Vec<&String> = ids.iter().filter(|id| !flows.contains(*id)).collect();
        assert!(missing.is_empty(), "round {round}: printed without a receipt: {:?}", &missing[..missing.len().min(5)]);
    }
    // The rounds must reach what they test: runs cut short with decisions given.
    assert!(killed_mid_run >= 6, "only {killed_mid_run} runs were killed before finishing");
    assert!(printed > 0, "no decision was printed before a kill");
    eprintln!("{killed_mid_run} runs killed, {torn} torn tails, {printed} decisions printed");

    // A last, whole run recovers whatever the last kill left, and closes the log.
    let input = records(&dir, 999, 500);
    let output = logged_check(&mut flowgate(), &[], &log, &secret, &input).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let verified = verify(&log, &public);
    assert_eq!((verified.broken.clone(), verified.torn, verified.open), (None, None, false), "{verified:?}");
    assert!(logged_flows(&log).contains("999-499"));
}

#[test]
fn a_full_disk_gives_an_error_not_a_gap() {
    let dir = scratch("full");
    let (secret, public) = key_pair(&dir);
    let log = dir.join("log");
    let input = records(&dir, 7, 60_000);
    // A file-size limit stands in for a full disk: writes past it fail with
    // EFBIG (the signal it would raise is ignored, as a server would).
    let mut limited = Command::new("sh");
    limited.arg("-c").arg("trap '' XFSZ; ulimit -f 20000; exec \"$0\" \"$@\"").arg(env!("CARGO_BIN_EXE_flowgate"));
    let output = logged_check(&mut limited, &[], &log, &secret, &input).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("decision log") && stderr.contains("cannot write"), "{stderr}");
    assert!(stderr.contains("no decision from this line on was given"), "{stderr}");
    let ids = decided_ids(&output.stdout);
    assert!(!ids.is_empty() && ids.len() < 60_000, "{} decisions printed", ids.len());
    let flows = logged_flows(&log);
    assert!(ids.iter().all(|id| flows.contains(id)), "a printed decision has no receipt");
    let verified = verify(&log, &public);
    assert_eq!((verified.broken.clone(), verified.torn), (None, None), "the failed group was cut back: {verified:?}");
    assert!(verified.receipts >= ids.len() as u64);
}
