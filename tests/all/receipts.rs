//! The decision log: every way of tampering with it is caught and named,
//! many threads make one gap-free chain, restarts and torn tails recover.
//! (Killing the real binary and filling its disk: `host/cli/tests/receipts.rs`.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flowgate::{Audit, BreakKind, Checkpoint, Digest, Durability, Host, LogOptions, PublicKey, SecretKey, Verified};
use flowgate_reference_set::sample;

use crate::{flowgate, reference_builder};

/// A scratch directory, removed first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-receipts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(segment_bytes: u64, keep_records: bool) -> LogOptions {
    LogOptions { durability: Durability::Buffered, segment_bytes, keep_records, ..LogOptions::default() }
}

fn host_logging(dir: &Path, key: &SecretKey, options: LogOptions) -> Host {
    reference_builder().decision_log(dir, key.clone(), options).build().unwrap()
}

/// A log of `count` decisions in batches of 7, over segments of about
/// `segment_bytes`, closed.
fn write_log(dir: &Path, key: &SecretKey, count: usize, segment_bytes: u64, keep_records: bool) {
    let host = host_logging(dir, key, options(segment_bytes, keep_records));
    for batch in sample::flows(12, count).chunks(7) {
        host.try_evaluate_batch(batch).unwrap();
    }
}

fn verify(dir: &Path, key: &PublicKey, collected: &[Checkpoint]) -> Verified {
    Audit::open(dir).unwrap().verify(key, collected).unwrap()
}

fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:08}.jsonl"))
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// The index of the line holding receipt `seq`.
fn line_of(lines: &[String], seq: u64) -> usize {
    lines.iter().position(|l| l.contains(&format!(",\"seq\":{seq},"))).unwrap()
}

/// A receipt line with its hash recomputed, as someone without the log key
/// but with the format's documentation would.
fn rehash(line: &str) -> String {
    let at = line.rfind(",\"hash\":\"").unwrap();
    format!("{},\"hash\":\"{}\"}}", &line[..at], Digest::of(&line.as_bytes()[..at]))
}

/// A closed log of 60 decisions over several segments, with records,
/// written once, and the key that signed it.
fn pristine() -> &'static (PathBuf, SecretKey) {
    static LOG: OnceLock<(PathBuf, SecretKey)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = scratch("pristine");
        let key = SecretKey::generate().unwrap();
        write_log(&dir, &key, 60, 8 << 10, true);
        assert!(segment(&dir, 3).exists(), "the log must span segments");
        let clean = verify(&dir, &key.public(), &[]);
        assert_eq!((clean.receipts, clean.records, clean.broken.clone()), (60, 60, None));
        (dir, key)
    })
}

/// A copy of the pristine log after `edit`, verified.
fn tampered(name: &str, edit: impl FnOnce(&Path)) -> Verified {
    let (pristine, key) = pristine();
    let dir = scratch(name);
    for entry in std::fs::read_dir(pristine).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    edit(&dir);
    verify(&dir, &key.public(), &[])
}

fn assert_break(verified: &Verified, kind: BreakKind, seq: u64) {
    let broken = verified.broken.as_ref().unwrap_or_else(|| panic!("not caught: {verified:?}"));
    assert_eq!((broken.kind, broken.seq), (kind, Some(seq)), "{broken}");
}

#[test]
fn an_untouched_log_verifies_across_segments_and_restarts() {
    let dir = scratch("clean");
    let key = SecretKey::generate().unwrap();
    write_log(&dir, &key, 40, 4 << 10, false);
    write_log(&dir, &key, 25, 4 << 10, false);
    let verified = verify(&dir, &key.public(), &[]);
    assert_eq!(verified.broken, None, "{verified:?}");
    assert_eq!(verified.receipts, 65);
    assert!(verified.segments >= 4 && verified.checkpoints >= verified.segments, "{verified:?}");
    assert!(!verified.open, "a closed log ends with a checkpoint");
    // The log holds digests of records, never their content.
    assert!(!dir.join("records-00000001.jsonl").exists());
    let text = std::fs::read_to_string(segment(&dir, 1)).unwrap();
    let recipient = sample::flows(12, 1)[0].recipient.id.clone();
    assert!(recipient.is_empty() || !text.contains(&recipient), "{recipient}");
    // Another key's view of the same log: every checkpoint is forged.
    let other = SecretKey::generate().unwrap().public();
    assert_eq!(verify(&dir, &other, &[]).broken.unwrap().kind, BreakKind::ForgedCheckpoint);
}

#[test]
fn an_edited_receipt_is_named() {
    let verified = tampered("edited", |dir| {
        let path = segment(dir, 2);
        let mut lines = read_lines(&path);
        let at = lines.len() / 2;
        lines[at] = lines[at].replacen("\"platform\":\"", "\"platform\":\"Z", 1);
        write_lines(&path, &lines);
    });
    let broken = verified.broken.clone().unwrap();
    assert_eq!((broken.kind, broken.segment), (BreakKind::Edited, 2), "{broken}");
    assert!(broken.seq.is_some() && broken.to_string().contains(": edited: "), "{broken}");
}

#[test]
fn an_edited_receipt_with_its_hash_recomputed_is_named() {
    let verified = tampered("rehashed", |dir| {
        let path = segment(dir, 1);
        let mut lines = read_lines(&path);
        let at = line_of(&lines, 5);
        lines[at] = rehash(&lines[at].replacen("\"effect\":\"deny\"", "\"effect\":\"allow\"", 1).replacen(
            "\"effect\":\"allow_with_obligations\"",
            "\"effect\":\"allow\"",
            1,
        ));
        write_lines(&path, &lines);
    });
    assert_break(&verified, BreakKind::Edited, 5);
}

#[test]
fn a_deleted_receipt_is_named() {
    let verified = tampered("deleted", |dir| {
        let path = segment(dir, 2);
        let mut lines = read_lines(&path);
        lines.remove(2);
        write_lines(&path, &lines);
    });
    let broken = verified.broken.unwrap();
    assert_eq!((broken.kind, broken.segment), (BreakKind::Deleted, 2), "{broken}");
}

#[test]
fn a_deleted_segment_is_named() {
    let verified = tampered("deleted-segment", |dir| std::fs::remove_file(segment(dir, 2)).unwrap());
    let broken = verified.broken.unwrap();
    assert_eq!((broken.kind, broken.segment), (BreakKind::Deleted, 3), "{broken}");
}

#[test]
fn an_inserted_receipt_is_named() {
    // A copy of a receipt, and a forged one chained after the receipt before it.
    let copied = tampered("inserted-copy", |dir| {
        let path = segment(dir, 1);
        let mut lines = read_lines(&path);
        let copy = lines[3].clone();
        lines.insert(4, copy);
        write_lines(&path, &lines);
    });
    assert_eq!(copied.broken.as_ref().map(|b| b.kind), Some(BreakKind::Inserted), "{copied:?}");
    let forged = tampered("inserted-forged", |dir| {
        let path = segment(dir, 1);
        let mut lines = read_lines(&path);
        let at = line_of(&lines, 4);
        let forged = rehash(&lines[at].replacen("\"flow\":\"", "\"flow\":\"forged-", 1));
        lines.insert(at, forged);
        write_lines(&path, &lines);
    });
    assert_break(&forged, BreakKind::Inserted, 4);
}

#[test]
fn reordered_receipts_are_named() {
    let verified = tampered("reordered", |dir| {
        let path = segment(dir, 1);
        let mut lines = read_lines(&path);
        let at = line_of(&lines, 3);
        lines.swap(at, at + 1);
        write_lines(&path, &lines);
    });
    assert_eq!(verified.broken.as_ref().map(|b| b.kind), Some(BreakKind::Reordered), "{verified:?}");
}

#[test]
fn a_cut_segment_is_named_truncated() {
    let verified = tampered("truncated", |dir| {
        let path = segment(dir, 2);
        let mut lines = read_lines(&path);
        lines.truncate(lines.len() - 3);
        write_lines(&path, &lines);
    });
    assert_eq!(verified.broken.as_ref().map(|b| (b.kind, b.segment)), Some((BreakKind::Truncated, 2)), "{verified:?}");
}

#[test]
fn a_forged_checkpoint_is_named() {
    let verified = tampered("forged", |dir| {
        let path = segment(dir, 1);
        let mut lines = read_lines(&path);
        let last = lines.len() - 1;
        let checkpoint = Checkpoint::parse(lines[last].as_bytes()).unwrap();
        let forged = Checkpoint { count: checkpoint.count + 1, ..checkpoint };
        lines[last] = forged.to_line();
        write_lines(&path, &lines);
    });
    assert_eq!(verified.broken.as_ref().map(|b| b.kind), Some(BreakKind::ForgedCheckpoint), "{verified:?}");
}

#[test]
fn an_edited_or_erased_record_beside_the_chain() {
    let edited = tampered("record-edited", |dir| {
        let path = dir.join("records-00000001.jsonl");
        let mut lines = read_lines(&path);
        lines[1] = lines[1].replacen("\"purpose\":\"", "\"purpose\":\"x", 1);
        lines[1] = lines[1].replacen("\"id\":\"", "\"id\":\"edited-", 1);
        write_lines(&path, &lines);
    });
    assert_break(&edited, BreakKind::Edited, 2);
    // Erasing a record (an individual's deletion request) breaks nothing.
    let erased = tampered("record-erased", |dir| {
        let path = dir.join("records-00000001.jsonl");
        let mut lines = read_lines(&path);
        lines.remove(1);
        write_lines(&path, &lines);
    });
    assert_eq!((erased.broken, erased.erased, erased.records), (None, 1, 59));
}

#[test]
fn collected_checkpoints_catch_a_rewrite_and_a_truncation_signed_again() {
    let dir = scratch("rewrite");
    let key = SecretKey::generate().unwrap();
    write_log(&dir, &key, 30, 1 << 20, false);
    let collected = Audit::open(&dir).unwrap().latest_checkpoint().unwrap().unwrap();
    assert_eq!(collected.count, 30);
    // The platform holds the key: it can write a whole new log, signed.
    let rewritten = scratch("rewrite-new");
    write_log(&rewritten, &key, 10, 1 << 20, false);
    let host = host_logging(&rewritten, &key, options(1 << 20, false));
    host.try_evaluate_batch(&sample::flows(99, 25)).unwrap();
    drop(host);
    assert_eq!(verify(&rewritten, &key.public(), &[]).broken, None, "alone, a re-signed log verifies");
    let caught = verify(&rewritten, &key.public(), std::slice::from_ref(&collected));
    assert_break(&caught, BreakKind::Edited, 30);
    // A log cut below the collected checkpoint, and signed again.
    let cut = scratch("rewrite-cut");
    write_log(&cut, &key, 20, 1 << 20, false);
    let caught = verify(&cut, &key.public(), std::slice::from_ref(&collected));
    assert_eq!(caught.broken.as_ref().map(|b| b.kind), Some(BreakKind::Truncated), "{caught:?}");
    // The original still holds it.
    let kept = verify(&dir, &key.public(), &[collected]);
    assert_eq!((kept.broken, kept.collected), (None, 1));
}

#[test]
fn many_threads_make_one_gap_free_chain() {
    for durability in [Durability::Fsync, Durability::Buffered] {
        let dir = scratch(&format!("threads-{durability:?}"));
        let key = SecretKey::generate().unwrap();
        let host =
            host_logging(&dir, &key, LogOptions { durability, segment_bytes: 64 << 10, ..LogOptions::default() });
        let flows = sample::flows(3, 1_200);
        std::thread::scope(|scope| {
            for (thread, share) in flows.chunks(150).enumerate() {
                let host = &host;
                scope.spawn(move || {
                    // Batches of 1 to 40, so groups mix sizes and threads.
                    let mut rest = share;
                    let mut size = thread + 1;
                    while !rest.is_empty() {
                        let (batch, after) = rest.split_at(size.min(rest.len()));
                        assert_eq!(host.try_evaluate_batch(batch).unwrap().len(), batch.len());
                        rest = after;
                        size = size * 7 % 40 + 1;
                    }
                });
            }
        });
        assert_eq!(host.decision_log().unwrap().count(), 1_200);
        drop(host);
        let verified = verify(&dir, &key.public(), &[]);
        assert_eq!((verified.receipts, verified.broken), (1_200, None), "{durability:?}");
        let mut flows_logged = Vec::new();
        for n in 1..=verified.segments {
            for line in read_lines(&segment(&dir, n)) {
                if let Some(rest) = line.split("\"flow\":\"").nth(1) {
                    flows_logged.push(rest.split('"').next().unwrap().to_owned());
                }
            }
        }
        flows_logged.sort();
        let mut expected: Vec<String> = flows.iter().map(|f| f.id.clone()).collect();
        expected.sort();
        assert_eq!(flows_logged, expected, "each decision exactly once");
    }
}

#[test]
fn a_torn_tail_is_reported_then_cut_on_the_next_start() {
    let dir = scratch("torn");
    let key = SecretKey::generate().unwrap();
    write_log(&dir, &key, 12, 1 << 20, true);
    // A crash mid-write: half a receipt, no checkpoint closing the segment.
    let path = segment(&dir, 1);
    let mut lines = read_lines(&path);
    lines.pop();
    let half = lines[3][..lines[3].len() / 2].to_owned();
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str(&half);
    std::fs::write(&path, text).unwrap();
    let before = verify(&dir, &key.public(), &[]);
    assert_eq!((before.broken.clone(), before.torn, before.open), (None, Some((1, half.len() as u64)), true));
    let host = host_logging(&dir, &key, options(1 << 20, true));
    let recovery = host.decision_log().unwrap().recovery().clone();
    assert_eq!(
        (recovery.receipts, recovery.cut, recovery.closed),
        (12, Some((1, half.len() as u64)), Some(1)),
        "{recovery:?}"
    );
    host.try_evaluate_batch(&sample::flows(5, 3)).unwrap();
    drop(host);
    let after = verify(&dir, &key.public(), &[]);
    assert_eq!((after.receipts, after.torn, after.broken, after.records), (15, None, None, 15));
}

#[test]
fn a_damaged_log_is_not_written_over_and_one_log_has_one_writer() {
    let dir = scratch("damaged");
    let key = SecretKey::generate().unwrap();
    write_log(&dir, &key, 10, 1 << 20, false);
    let path = segment(&dir, 1);
    let mut lines = read_lines(&path);
    lines[2] = lines[2].replacen("\"platform\":\"", "\"platform\":\"Z", 1);
    write_lines(&path, &lines);
    let err = reference_builder().decision_log(&dir, key.clone(), LogOptions::default()).build().unwrap_err();
    assert!(err.to_string().contains("line 3") && err.to_string().contains("audit verify"), "{err}");

    let dir = scratch("one-writer");
    let host = host_logging(&dir, &key, LogOptions::default());
    let err = reference_builder().decision_log(&dir, key.clone(), LogOptions::default()).build().unwrap_err();
    assert!(err.to_string().contains("another process"), "{err}");
    drop(host);
}

#[test]
fn a_closed_log_fails_closed() {
    let dir = scratch("closed");
    let key = SecretKey::generate().unwrap();
    let host = host_logging(&dir, &key, LogOptions::default());
    host.decision_log().unwrap().close().unwrap();
    let flows = sample::flows(8, 4);
    assert!(host.try_evaluate_batch(&flows).is_err());
    for decision in host.evaluate_batch(&flows) {
        assert_eq!(decision.effect, flowgate::sdk::Effect::Deny);
        assert_eq!(decision.reasons[0].rule(), "receipt-not-written");
    }
    drop(host);
    assert_eq!(verify(&dir, &key.public(), &[]).receipts, 0);
}

#[test]
fn the_cli_logs_verifies_collects_counts_and_replays() {
    let dir = scratch("cli");
    let keys = dir.join("keys");
    let log = dir.join("log");
    let (log_arg, keys_arg) = (log.to_str().unwrap(), keys.to_str().unwrap());
    assert_eq!(flowgate(&["key", "new", "platform", "--out", keys_arg], b"").status, 0);
    let secret = keys.join("platform.key");
    let public = keys.join("platform.pub");
    let input: String = sample::flows(21, 300).iter().map(|f| f.to_json() + "\n").collect();
    let archive = dir.join("archive");
    let archive_arg = archive.to_str().unwrap();
    let run = flowgate(
        &[
            "check",
            "--log",
            log_arg,
            "--log-key",
            secret.to_str().unwrap(),
            "--log-records",
            "--log-segment-bytes",
            "20000",
            "--archive",
            archive_arg,
            "-",
        ],
        input.as_bytes(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 300);

    let verified = flowgate(&["audit", "verify", log_arg, "--key", public.to_str().unwrap()], b"");
    assert_eq!(verified.status, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(verified.stdout.contains("verified: 300 receipts"), "{}", verified.stdout);
    assert!(verified.stdout.contains("300 match their receipts"), "{}", verified.stdout);

    let checkpoint = flowgate(&["audit", "checkpoint", log_arg], b"");
    assert_eq!(checkpoint.status, 0, "{}", checkpoint.stderr);
    let collected = dir.join("checkpoint-1.json");
    std::fs::write(&collected, &checkpoint.stdout).unwrap();
    assert!(checkpoint.stdout.contains("\"count\":300"), "{}", checkpoint.stdout);

    let stats = flowgate(&["audit", "stats", log_arg], b"");
    assert_eq!(stats.status, 0, "{}", stats.stderr);
    assert!(stats.stdout.starts_with("receipts: 300\n"), "{}", stats.stdout);
    for section in ["by effect:", "by rule", "by platform:", "by day (UTC):", "lawful-basis/"] {
        assert!(stats.stdout.contains(section), "{section}: {}", stats.stdout);
    }

    // The same policies decide alike; a candidate set without a policy differs, per rule.
    let replay = flowgate(&["audit", "replay", log_arg], b"");
    assert_eq!(replay.status, 0, "{}{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("300 decided alike, 0 differ"), "{}", replay.stdout);
    let candidate = dir.join("candidate");
    for (name, manifest, wasm) in flowgate_reference_set::bundles().filter(|(name, _, _)| *name != "lawful-basis") {
        std::fs::create_dir_all(candidate.join(name)).unwrap();
        std::fs::write(candidate.join(name).join("manifest.toml"), manifest).unwrap();
        std::fs::write(candidate.join(name).join("policy.wasm"), wasm).unwrap();
    }
    let replay =
        flowgate(&["audit", "replay", log_arg, "--policies", candidate.to_str().unwrap(), "--allow-unsigned"], b"");
    assert_eq!(replay.status, 1, "{}{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("lawful-basis/"), "{}", replay.stdout);
    // With the archive, each record is decided by the exact set its receipt names.
    let replay = flowgate(&["audit", "replay", log_arg, "--archive", archive_arg], b"");
    assert_eq!(replay.status, 0, "{}{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains("300 decided alike") && replay.stdout.contains("300 of 300 decided by the same set"),
        "{}",
        replay.stdout
    );
    // An archived module changed afterwards is not used.
    let kept = std::fs::read_dir(archive.join("bundles")).unwrap().next().unwrap().unwrap().path();
    let mut wasm = std::fs::read(kept.join("policy.wasm")).unwrap();
    wasm.push(0);
    std::fs::write(kept.join("policy.wasm"), wasm).unwrap();
    let replay = flowgate(&["audit", "replay", log_arg, "--archive", archive_arg], b"");
    assert_eq!(replay.status, 1, "{}{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("not replayed: 300 records"), "{}", replay.stdout);

    // The log written again, shorter, and signed with the same key: caught
    // with the collected checkpoint, and named.
    std::fs::remove_dir_all(&log).unwrap();
    let shorter: String = input.lines().take(100).map(|l| format!("{l}\n")).collect();
    let run = flowgate(&["check", "--log", log_arg, "--log-key", secret.to_str().unwrap(), "-"], shorter.as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let caught = flowgate(
        &["audit", "verify", log_arg, "--key", public.to_str().unwrap(), "--checkpoints", collected.to_str().unwrap()],
        b"",
    );
    assert_eq!(caught.status, 1, "{}{}", caught.stdout, caught.stderr);
    assert!(caught.stdout.starts_with("broken: segment "), "{}", caught.stdout);
    assert!(caught.stdout.contains("truncated"), "{}", caught.stdout);
}

#[test]
fn a_flood_of_kept_records_is_refused_not_held() {
    let (pristine, key) = pristine();
    let dir = scratch("record-flood");
    for entry in std::fs::read_dir(pristine).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let flood: String = (0..5_000).map(|n| format!("{{\"seq\":{},\"record\":{{}}}}\n", 1_000 + n)).collect();
    let path = dir.join("records-00000001.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&flood);
    std::fs::write(&path, text).unwrap();
    let err = Audit::open(&dir).unwrap().verify(&key.public(), &[]).unwrap_err();
    assert!(err.to_string().contains("more kept records than segment 1 can hold"), "{err}");
}
