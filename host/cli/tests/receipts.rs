//! The decision log through the real binary: decisions logged, proved to
//! whoever holds the log's public key, checked offline, witnessed by a
//! regulator; every part of a proof and of the witness's memory tampered
//! with, and refused; the binary killed at random points and run out of
//! disk, and every decision it printed still has its receipt.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowgate::transparency::entry::Entry;
use flowgate::transparency::store::Stored;
use flowgate::{Audit, PublicKey, Verified};

fn flowgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowgate"))
}

/// Runs `flowgate ARGS`.
fn run(args: &[&str]) -> Output {
    flowgate().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// The flow of every receipt in the log (a torn last entry ends the read).
fn logged_flows(log: &Path) -> HashSet<String> {
    let Ok(stored) = Stored::open(log) else { return HashSet::new() };
    stored
        .entries()
        .unwrap()
        .map_while(Result::ok)
        .filter_map(|(_, bytes)| match Entry::decode(&bytes) {
            Ok(Entry::Receipt(receipt)) => Some(receipt.flow),
            _ => None,
        })
        .collect()
}

fn verify(log: &Path, key: &PublicKey) -> Verified {
    Audit::open(log).unwrap().verify(key, &[]).unwrap()
}

fn entries_len(log: &Path) -> u64 {
    std::fs::metadata(log.join("entries")).map_or(0, |m| m.len())
}

#[test]
fn killed_at_random_points_the_log_recovers_and_every_printed_decision_has_its_receipt() {
    let dir = scratch("kill");
    let (secret, public) = key_pair(&dir);
    let log = dir.join("log");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let (mut killed_mid_run, mut unsigned, mut printed) = (0, 0, 0);
    // A run that finishes before its kill tests nothing: on a fast or idle
    // machine the next rounds get twice the records, until eight were cut.
    let mut count = 25_000;
    for round in 0..16u64 {
        if killed_mid_run == 8 {
            break;
        }
        let input = records(&dir, 100 + round, count);
        let durability = if round % 2 == 0 { "fsync" } else { "buffered" };
        let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
        let before = entries_len(&log);
        let mut child = logged_check(&mut flowgate(), &["--durability", durability], &log, &secret, &input)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until receipts are being written, then a random while longer.
        let started = Instant::now();
        while entries_len(&log) <= before && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(1));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 250));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        killed_mid_run += u32::from(!status.success());
        if status.success() {
            count = (count * 2).min(800_000);
        }

        let ids = decided_ids(&std::fs::read(dir.join("stdout")).unwrap());
        printed += ids.len();
        let verified = verify(&log, &public);
        assert_eq!(verified.broken, None, "round {round}: {verified:#?}");
        unsigned += u32::from(verified.unsigned > 0);
        let flows = logged_flows(&log);
        let missing: Vec<&String> = ids.iter().filter(|id| !flows.contains(*id)).collect();
        assert!(missing.is_empty(), "round {round}: printed without a receipt: {:?}", &missing[..missing.len().min(5)]);
    }
    // The rounds must reach what they test: runs cut short with decisions given.
    assert!(killed_mid_run >= 6, "only {killed_mid_run} runs were killed before finishing");
    assert!(printed > 0, "no decision was printed before a kill");
    eprintln!("{killed_mid_run} runs killed, {unsigned} with an unsigned tail, {printed} decisions printed");

    // A last, whole run recovers whatever the last kill left, and closes the log.
    let input = records(&dir, 999, 500);
    let output = logged_check(&mut flowgate(), &[], &log, &secret, &input).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let verified = verify(&log, &public);
    assert_eq!((verified.broken.clone(), verified.unsigned, verified.open), (None, 0, false), "{verified:#?}");
    assert!(logged_flows(&log).contains("999-499"));
}

#[test]
fn a_full_disk_gives_an_error_not_a_gap() {
    let dir = scratch("full");
    let (secret, public) = key_pair(&dir);
    let log = dir.join("log");
    let input = records(&dir, 7, 200_000);
    // A file-size limit stands in for a full disk: writes past it fail with
    // EFBIG (the signal it would raise is ignored, as a server would).
    let mut limited = Command::new("sh");
    limited.arg("-c").arg("trap '' XFSZ; ulimit -f 8000; exec \"$0\" \"$@\"").arg(env!("CARGO_BIN_EXE_flowgate"));
    let output = logged_check(&mut limited, &[], &log, &secret, &input).output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("decision log") && stderr.contains("cannot write"), "{stderr}");
    assert!(stderr.contains("no decision from this line on was given"), "{stderr}");
    let ids = decided_ids(&output.stdout);
    assert!(!ids.is_empty() && ids.len() < 200_000, "{} decisions printed", ids.len());
    let flows = logged_flows(&log);
    assert!(ids.iter().all(|id| flows.contains(id)), "a printed decision has no receipt");
    let verified = verify(&log, &public);
    assert_eq!((verified.broken.clone(), verified.unsigned), (None, 0), "the failed group was cut back: {verified:#?}");
    assert!(verified.receipts >= ids.len() as u64);
}

/// The parts of the CLI round trip that later tests reuse.
struct Logged {
    dir: PathBuf,
    log: PathBuf,
    key: PathBuf,
    secret: PathBuf,
    input: PathBuf,
}

fn logged(name: &str, count: usize, extra: &[&str]) -> Logged {
    let dir = scratch(name);
    let (secret, _) = key_pair(&dir);
    let log = dir.join("log");
    let input = records(&dir, 21, count);
    let output = logged_check(&mut flowgate(), extra, &log, &secret, &input).stdout(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    Logged { key: dir.join("platform.pub"), dir, log, secret, input }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_decision_is_proved_and_checked_offline_and_every_tampering_is_refused() {
    let l = logged("prove", 300, &["--log-origin", "platform.example/decisions"]);
    // Proving one decision: by its index, and by its flow.
    let by_seq = run(&["audit", "prove", s(&l.log), "--seq", "42"]);
    assert_eq!(by_seq.status.code(), Some(0), "{}", text(&by_seq.stderr));
    let document: serde_json::Value = serde_json::from_slice(&by_seq.stdout).unwrap();
    let keys: Vec<&str> = document.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["receipt", "index", "tree_size", "proof", "checkpoint"]);
    assert_eq!((document["index"].as_u64(), document["tree_size"].as_u64()), (Some(42), Some(301)));
    let by_flow = run(&["audit", "prove", s(&l.log), "--flow", "21-41"]);
    assert_eq!(by_flow.stdout, by_seq.stdout, "{}", text(&by_flow.stderr));
    let proof = l.dir.join("proof.json");
    std::fs::write(&proof, &by_seq.stdout).unwrap();
    let checked = run(&["audit", "check", s(&proof), "--key", s(&l.key)]);
    let shown = text(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{shown}{}", text(&checked.stderr));
    assert!(shown.starts_with("proved: entry 42 is in the log `platform.example/decisions` of 301 entries"), "{shown}");
    assert!(shown.contains("\"flow\":\"21-41\""), "{shown}");
    // The record the data subject holds is the one decided.
    let record = l.dir.join("record.json");
    let line = std::fs::read_to_string(&l.input).unwrap().lines().nth(41).unwrap().to_owned();
    std::fs::write(&record, &line).unwrap();
    let with_record = run(&["audit", "check", s(&proof), "--key", s(&l.key), "--record", s(&record)]);
    assert_eq!(with_record.status.code(), Some(0), "{}", text(&with_record.stdout));
    let digest = run(&["digest", s(&record)]);
    assert!(shown.contains(text(&digest.stdout).trim()), "the receipt names the record's digest");
    let other = std::fs::read_to_string(&l.input).unwrap().lines().nth(40).unwrap().to_owned();
    std::fs::write(&record, other).unwrap();
    let wrong_record = run(&["audit", "check", s(&proof), "--key", s(&l.key), "--record", s(&record)]);
    assert_eq!(wrong_record.status.code(), Some(1), "{}", text(&wrong_record.stdout));

    // Each part changed: refused, exit 1.
    let original = document.clone();
    let other_entry: serde_json::Value =
        serde_json::from_slice(&run(&["audit", "prove", s(&l.log), "--seq", "43"]).stdout).unwrap();
    let checkpoint = original["checkpoint"].as_str().unwrap().to_owned();
    let signature = checkpoint.trim_end().rsplit(' ').next().unwrap().to_owned();
    let mut forged = signature.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let mut tampered: Vec<(String, serde_json::Value)> = vec![
        ("leaf bytes".into(), serde_json::json!({"receipt": other_entry["receipt"]})),
        ("index".into(), serde_json::json!({"index": 43})),
        ("tree size".into(), serde_json::json!({"tree_size": 300})),
        ("checkpoint size".into(), serde_json::json!({"checkpoint": checkpoint.replacen("\n301\n", "\n300\n", 1)})),
        (
            "checkpoint origin".into(),
            serde_json::json!({"checkpoint": checkpoint.replacen("platform.example/decisions\n", "platform.example/other\n", 1)}),
        ),
        ("signature".into(), serde_json::json!({"checkpoint": checkpoint.replacen(&signature, &forged, 1)})),
        (
            "signature line".into(),
            serde_json::json!({"checkpoint": checkpoint.split("\n\n").next().unwrap().to_owned() + "\n"}),
        ),
    ];
    for at in 0..original["proof"].as_array().unwrap().len() {
        let mut path = original["proof"].clone();
        path[at] = other_entry["proof"][at].clone();
        if path[at] == original["proof"][at] {
            path[at] = serde_json::json!("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        }
        tampered.push((format!("proof hash {at}"), serde_json::json!({ "proof": path })));
    }
    for (what, change) in tampered {
        let mut document = original.clone();
        for (member, value) in change.as_object().unwrap() {
            document[member] = value.clone();
        }
        std::fs::write(&proof, document.to_string()).unwrap();
        let checked = run(&["audit", "check", s(&proof), "--key", s(&l.key)]);
        assert_eq!(checked.status.code(), Some(1), "{what}: {}{}", text(&checked.stdout), text(&checked.stderr));
        assert!(text(&checked.stdout).starts_with("refused: "), "{what}: {}", text(&checked.stdout));
    }
    // A wrong public key says so, rather than "forged".
    let (_, _) = key_pair(&l.dir.join("other"));
    std::fs::write(&proof, original.to_string()).unwrap();
    let wrong = run(&["audit", "check", s(&proof), "--key", s(&l.dir.join("other/platform.pub"))]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stdout).contains("is it the right public key?"), "{}", text(&wrong.stdout));
    let wrong = run(&["audit", "verify", s(&l.log), "--key", s(&l.dir.join("other/platform.pub"))]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stdout).starts_with("broken: wrong key:"), "{}", text(&wrong.stdout));
    // Usage and input errors: exit 2.
    assert_eq!(run(&["audit", "prove", s(&l.log), "--seq", "301"]).status.code(), Some(2));
    assert_eq!(run(&["audit", "check", s(&l.dir.join("missing.json")), "--key", s(&l.key)]).status.code(), Some(2));
    assert_eq!(run(&["audit", "prove", s(&l.log)]).status.code(), Some(2));
}

#[test]
fn a_regulator_collects_witnesses_and_catches_a_log_cut_or_forked() {
    let l = logged("witness", 200, &[]);
    let (state, wkeys) = (l.dir.join("state"), l.dir.join("wkeys"));
    let made = run(&["audit", "witness-key", "w1", "--name", "regulator.example/w1", "--out", s(&wkeys)]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let (wkey, wpub) = (wkeys.join("w1.key"), wkeys.join("w1.pub"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&wkey).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let file = |name: &str, bytes: &[u8]| {
        let path = l.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let witness = |proof: &Path| {
        run(&["audit", "witness", "--key", s(&wkey), "--log-key", s(&l.key), "--state", s(&state), s(proof)])
    };
    // First seen: cosigned on the signature alone.
    let first = file("c0.json", &run(&["audit", "consistency", s(&l.log)]).stdout);
    let cosigned = witness(&first);
    assert_eq!(cosigned.status.code(), Some(0), "{}", text(&cosigned.stderr));
    let cosigned_1 = file("cosigned-1", &cosigned.stdout);
    assert!(text(&cosigned.stdout).contains("\n\u{2014} regulator.example/w1 "), "{}", text(&cosigned.stdout));
    // The log grows; the consistency proof from the cosigned checkpoint
    // is checked offline, and cosigned again.
    let more = records(&l.dir, 22, 50);
    let grown = logged_check(&mut flowgate(), &[], &l.log, &l.secret, &more).stdout(Stdio::null()).output().unwrap();
    assert!(grown.status.success());
    let proof = file("c1.json", &run(&["audit", "consistency", s(&l.log), "--from", s(&cosigned_1)]).stdout);
    let checked = run(&["audit", "check", s(&proof), "--key", s(&l.key), "--from", s(&cosigned_1)]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stdout));
    assert!(text(&checked.stdout).starts_with("consistent: the tree of 252 entries"), "{}", text(&checked.stdout));
    // Tampering with the consistency proof: each hash, the sizes.
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    let hashes = document["proof"].as_array().unwrap().len();
    assert!(hashes > 0);
    for at in 0..hashes {
        let mut changed = document.clone();
        changed["proof"][at] = serde_json::json!("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        let path = file("changed.json", changed.to_string().as_bytes());
        let checked = run(&["audit", "check", s(&path), "--key", s(&l.key), "--from", s(&cosigned_1)]);
        assert_eq!(checked.status.code(), Some(1), "hash {at}: {}", text(&checked.stdout));
        assert_eq!(witness(&path).status.code(), Some(1), "hash {at}");
    }
    for (member, value) in [("old_size", serde_json::json!(100)), ("new_size", serde_json::json!(251))] {
        let mut changed = document.clone();
        changed[member] = value;
        let path = file("changed.json", changed.to_string().as_bytes());
        let checked = run(&["audit", "check", s(&path), "--key", s(&l.key), "--from", s(&cosigned_1)]);
        assert_eq!(checked.status.code(), Some(1), "{member}: {}", text(&checked.stdout));
        assert_eq!(witness(&path).status.code(), Some(1), "{member}");
    }
    let cosigned = witness(&proof);
    assert_eq!(cosigned.status.code(), Some(0), "{}", text(&cosigned.stderr));
    let cosigned_2 = file("cosigned-2", &cosigned.stdout);
    // The witness's memory tampered with: its state no longer carries its
    // own cosignature, and it refuses rather than start over.
    let state_file =
        std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().path()).find(|p| !p.ends_with("lock")).unwrap();
    let kept = std::fs::read_to_string(&state_file).unwrap();
    let stripped: String =
        kept.lines().filter(|l| !l.contains("regulator.example/w1")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&state_file, stripped).unwrap();
    let refused = witness(&proof);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("not a checkpoint this witness cosigned"), "{}", text(&refused.stderr));
    std::fs::write(&state_file, &kept).unwrap();

    // The platform cuts its log and signs again with its key: alone, it
    // verifies; against what the regulator kept, it does not, and the
    // witness refuses to go back.
    let cut = l.dir.join("cut");
    let first: String =
        std::fs::read_to_string(&l.input).unwrap().lines().take(120).map(|l| format!("{l}\n")).collect();
    let shorter = file("shorter.jsonl", first.as_bytes());
    let rewritten =
        logged_check(&mut flowgate(), &[], &cut, &l.secret, &shorter).stdout(Stdio::null()).output().unwrap();
    assert!(rewritten.status.success());
    assert_eq!(run(&["audit", "verify", s(&cut), "--key", s(&l.key)]).status.code(), Some(0));
    let caught =
        run(&["audit", "verify", s(&cut), "--key", s(&l.key), "--checkpoints", s(&cosigned_2), "--witness", s(&wpub)]);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught.stdout));
    assert!(text(&caught.stdout).contains("truncated"), "{}", text(&caught.stdout));
    let from_cut = file("cut.json", &run(&["audit", "consistency", s(&cut)]).stdout);
    let refused = witness(&from_cut);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("fewer than the 252 already cosigned"), "{}", text(&refused.stderr));
    // A fork of the same size: equivocation, whichever checkpoint comes first.
    let fork = l.dir.join("fork");
    let forked = std::fs::read_to_string(&l.input).unwrap().replacen("\"id\":\"21-0\"", "\"id\":\"21-0-forked\"", 1);
    let fork_input = file("fork.jsonl", forked.as_bytes());
    for input in [&fork_input, &more] {
        let run = logged_check(&mut flowgate(), &[], &fork, &l.secret, input).stdout(Stdio::null()).output().unwrap();
        assert!(run.status.success());
    }
    let fork_checkpoint = file("fork-checkpoint", &run(&["audit", "checkpoint", s(&fork), "--key", s(&l.key)]).stdout);
    let genuine = file("genuine", &run(&["audit", "checkpoint", s(&l.log), "--key", s(&l.key)]).stdout);
    for order in [[&genuine, &fork_checkpoint], [&fork_checkpoint, &genuine]] {
        let verified =
            run(&["audit", "verify", s(&l.log), "--key", s(&l.key), "--checkpoints", s(order[0]), s(order[1])]);
        assert_eq!(verified.status.code(), Some(1));
        assert!(text(&verified.stdout).starts_with("broken: equivocation:"), "{}", text(&verified.stdout));
    }
    let fork_proof = file("fork.json", &run(&["audit", "consistency", s(&fork)]).stdout);
    let refused = witness(&fork_proof);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("equivocation"), "{}", text(&refused.stderr));
    // The genuine log, with what the regulator kept and its witness: verified.
    let verified = run(&[
        "audit",
        "verify",
        s(&l.log),
        "--key",
        s(&l.key),
        "--checkpoints",
        s(&cosigned_1),
        s(&cosigned_2),
        "--witness",
        s(&wpub),
    ]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified.stdout));
    assert!(
        text(&verified.stdout).contains("witnessed: `regulator.example/w1` cosigned the tree of 252 entries"),
        "{}",
        text(&verified.stdout)
    );
    // A proof against the witnessed checkpoint, checked with the witness required.
    let proof = file(
        "witnessed.json",
        &run(&["audit", "prove", s(&l.log), "--seq", "7", "--checkpoint", s(&cosigned_2)]).stdout,
    );
    let checked = run(&["audit", "check", s(&proof), "--key", s(&l.key), "--witness", s(&wpub)]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stdout));
    let unwitnessed = file("unwitnessed.json", &run(&["audit", "prove", s(&l.log), "--seq", "7"]).stdout);
    let checked = run(&["audit", "check", s(&unwitnessed), "--key", s(&l.key), "--witness", s(&wpub)]);
    assert_eq!(checked.status.code(), Some(1), "{}", text(&checked.stdout));
}

#[test]
fn a_checkpoint_is_checked_before_it_is_printed() {
    let l = logged("checkpoint", 40, &[]);
    let good = run(&["audit", "checkpoint", s(&l.log), "--key", s(&l.key)]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("\n41\n"), "{}", text(&good.stdout));
    // Both slots forged (the size changed after signing): nothing printed.
    for slot in ["checkpoint.0", "checkpoint.1"] {
        let path = l.log.join(slot);
        let note = std::fs::read_to_string(&path).unwrap();
        let size = note.lines().nth(1).unwrap().to_owned();
        std::fs::write(&path, note.replacen(&format!("\n{size}\n"), "\n41000\n", 1)).unwrap();
    }
    let forged = run(&["audit", "checkpoint", s(&l.log), "--key", s(&l.key)]);
    assert_eq!((forged.status.code(), forged.stdout.is_empty()), (Some(1), true), "{}", text(&forged.stdout));
    assert!(text(&forged.stderr).starts_with("refused: "), "{}", text(&forged.stderr));
    assert_eq!(run(&["audit", "prove", s(&l.log), "--seq", "3"]).status.code(), Some(1), "no proof from a forged head");
}

#[test]
fn stats_replay_and_digest_from_the_command_line() {
    let l = logged("replay", 300, &["--log-records"]);
    let stats = run(&["audit", "stats", s(&l.log)]);
    assert_eq!(stats.status.code(), Some(0), "{}", text(&stats.stderr));
    assert!(
        text(&stats.stdout).starts_with("receipts: 300\nentries: 301 (1 policy sets)\n"),
        "{}",
        text(&stats.stdout)
    );
    for section in ["by effect:", "by rule", "by platform:", "by day (UTC):", "lawful-basis/"] {
        assert!(text(&stats.stdout).contains(section), "{section}");
    }
    let replay = run(&["audit", "replay", s(&l.log)]);
    assert_eq!(replay.status.code(), Some(0), "{}{}", text(&replay.stdout), text(&replay.stderr));
    assert!(text(&replay.stdout).contains("300 decided alike, 0 differ"), "{}", text(&replay.stdout));
    let candidate = l.dir.join("candidate");
    for (name, manifest, wasm) in flowgate_reference_set::bundles().filter(|(name, _, _)| *name != "lawful-basis") {
        std::fs::create_dir_all(candidate.join(name)).unwrap();
        std::fs::write(candidate.join(name).join("manifest.toml"), manifest).unwrap();
        std::fs::write(candidate.join(name).join("policy.wasm"), wasm).unwrap();
    }
    let replay = run(&["audit", "replay", s(&l.log), "--policies", s(&candidate), "--allow-unsigned"]);
    let shown = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{shown}");
    assert!(shown.contains("lawful-basis/"), "{shown}");
    // Each difference says what changed: effect, rules, obligations.
    assert!(
        shown.contains("(then → now)") && shown.contains(": effect ") && shown.contains("rules -lawful-basis/"),
        "{shown}"
    );
    // A log that keeps no records: nothing to replay, said, exit 1.
    let bare = logged("replay-bare", 20, &[]);
    let replay = run(&["audit", "replay", s(&bare.log)]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(text(&replay.stdout).contains("keeps no records"), "{}", text(&replay.stdout));
    // `flowgate digest`: one record, pretty-printed or not, or lines of them.
    let lines = std::fs::read_to_string(&l.input).unwrap();
    let digests = run(&["digest", s(&l.input)]);
    assert_eq!((digests.status.code(), text(&digests.stdout).lines().count()), (Some(0), 300));
    let one: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    let pretty = l.dir.join("pretty.json");
    std::fs::write(&pretty, serde_json::to_string_pretty(&one).unwrap()).unwrap();
    let digest = run(&["digest", s(&pretty)]);
    assert_eq!(text(&digest.stdout).lines().next(), text(&digests.stdout).lines().next());
    std::fs::write(&pretty, "{\"id\":1}\n").unwrap();
    assert_eq!(run(&["digest", s(&pretty)]).status.code(), Some(1));
}

#[cfg(target_os = "linux")]
#[test]
fn verifying_a_crafted_huge_log_stays_within_bounded_memory() {
    // 96 MiB of entries crafted to be as costly as possible: the largest
    // entries the format allows, then policy-set entries with no policies
    // (small, each a set a verifier might keep).
    let dir = scratch("huge");
    let (_, _) = key_pair(&dir);
    let log = dir.join("log");
    std::fs::create_dir_all(log.join("tree")).unwrap();
    // Written as it is made: a forked child would count this process's
    // memory as its own until it runs the binary.
    let mut file = std::io::BufWriter::new(std::fs::File::create(log.join("entries")).unwrap());
    let mut frame = Vec::new();
    let mut written = 0;
    for _ in 0..48 {
        frame.clear();
        flowgate::transparency::store::push_frame(&mut frame, &vec![0x01u8; 1 << 20]);
        std::io::Write::write_all(&mut file, &frame).unwrap();
        written += frame.len();
    }
    let mut index = 48u64;
    while written < 96 << 20 {
        let set = flowgate::transparency::policy_set::PolicySet {
            index,
            time_ms: 0,
            id: flowgate::Digest::of(b"x"),
            host_version: String::new(),
            host_rules: vec![],
            policies: vec![],
            obligations: vec![],
            remedies: vec![],
        };
        frame.clear();
        flowgate::transparency::store::push_frame(&mut frame, &set.encode());
        std::io::Write::write_all(&mut file, &frame).unwrap();
        written += frame.len();
        index += 1;
    }
    drop(file);
    std::fs::write(log.join("entries.idx"), 0u64.to_be_bytes()).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = flowgate()
        .args(["audit", "verify", s(&log), "--key", s(&dir.join("platform.pub"))])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // The peak resident set of the binary itself, as it runs (what wait4
    // reports includes the test process's pages shared until exec).
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap();
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix("kB"));
        peak_kib = peak_kib.max(hwm.and_then(|v| v.trim().parse().ok()).unwrap_or(0u64));
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&err).unwrap());
    assert_eq!(status, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("broken: "), "{stdout}");
    eprintln!("verifying a 96 MiB crafted log peaked at {} MiB", peak_kib >> 10);
    assert!(peak_kib < 96 << 10, "verify held {} MiB", peak_kib >> 10);
}
