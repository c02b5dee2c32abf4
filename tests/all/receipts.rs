//! The decision log, end to end through the library: every decision leaves
//! a receipt in a transparency log that proves it to whoever holds the
//! log's public key; every way of tampering with the log, its proofs and
//! its checkpoints is caught and named; many threads make one log;
//! restarts check what they append to. (The CLI's proofs and witness, and
//! killing the real binary or filling its disk: `host/cli/tests/receipts.rs`.)
//!
//! The attacks of issue 23, each a test here or in the CLI's: equivocation
//! in both orders, a count-0 checkpoint, damaged older data, the newest
//! entries deleted (caught by a collected checkpoint and a witness), a
//! key-less edit of the newest entries not signed at restart, a duplicate
//! kept record before the genuine one, time going backwards, bounded
//! memory on a crafted log (CLI), an unverified checkpoint printed (CLI),
//! an archive's set list against its id, group-readable kept records.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flowgate::transparency::checkpoint::{Checkpoint, SignedCheckpoint};
use flowgate::transparency::entry::Entry;
use flowgate::transparency::merkle::{EMPTY_ROOT, leaf_hash};
use flowgate::transparency::note::Verifier;
use flowgate::transparency::proof::InclusionProof;
use flowgate::transparency::receipt::Receipt;
use flowgate::transparency::store::{AppendOptions, Appender, Group, Stored, push_frame};
use flowgate::{
    Audit, BreakKind, Durability, Host, LogOptions, PublicKey, SecretKey, UnitVerified, Verified, VerifyOptions,
};
use flowgate_reference_set::sample;

use crate::{reference_builder, scratch_dir};

const ORIGIN: &str = "platform.example/decisions";

fn options(keep_records: bool) -> LogOptions {
    LogOptions { durability: Durability::Buffered, keep_records, origin: Some(ORIGIN.into()), ..LogOptions::default() }
}

fn host_logging(dir: &Path, key: &SecretKey, options: LogOptions) -> Host {
    reference_builder().decision_log(dir, key.clone(), options).build().unwrap()
}

/// A log of `count` decisions in batches of 7, closed.
fn write_log(dir: &Path, key: &SecretKey, count: usize, keep_records: bool) {
    let host = host_logging(dir, key, options(keep_records));
    for batch in sample::flows(12, count).chunks(7) {
        host.try_evaluate_batch(batch).unwrap();
    }
}

fn verify(dir: &Path, key: &PublicKey, collected: &[String]) -> Verified {
    Audit::open(dir).unwrap().verify(key, collected).unwrap()
}

/// The log in `dir` verified a unit at a time, each unit's result passed
/// as JSON (as Spark passes it between machines), in reverse order, then
/// joined; `change` may edit unit `k`'s JSON first.
fn joined(dir: &Path, key: &PublicKey, collected: &[String], change: impl Fn(u64, String) -> String) -> Verified {
    let audit = Audit::open(dir).unwrap();
    let options = || VerifyOptions {
        collected: collected.iter().map(|note| note.as_bytes().to_vec()).collect(),
        ..VerifyOptions::new(*key)
    };
    let units: Vec<UnitVerified> = (audit.units().unwrap().into_iter().rev())
        .map(|unit| {
            let json = serde_json::to_string(&audit.verify_unit(options(), unit).unwrap()).unwrap();
            serde_json::from_str(&change(unit, json)).unwrap()
        })
        .collect();
    audit.verify_joined(options(), units).unwrap()
}

/// A closed log of 600 decisions (with records), written once: past the
/// index's stride and the tree's stored level 8.
fn pristine() -> &'static (PathBuf, SecretKey) {
    static LOG: OnceLock<(PathBuf, SecretKey)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = scratch_dir("receipts-pristine");
        let key = SecretKey::generate().unwrap();
        write_log(&dir, &key, 600, true);
        let clean = verify(&dir, &key.public(), &[]);
        assert_eq!((clean.receipts, clean.policy_sets, clean.records, clean.broken.clone()), (600, 1, 600, None));
        (dir, key)
    })
}

/// A copy of `from` (the pristine log by default) in a fresh directory.
fn copy_of(from: &Path, name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    copy_dir(from, &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
    let mode = std::fs::metadata(from).unwrap().permissions();
    std::fs::set_permissions(to, mode).unwrap();
}

/// A copy of the pristine log after `edit`, verified.
fn tampered(name: &str, edit: impl FnOnce(&Path)) -> Verified {
    let (pristine, key) = pristine();
    let dir = copy_of(pristine, name);
    edit(&dir);
    verify(&dir, &key.public(), &[])
}

/// Whether `verified` names `kind` (at `index`, when given).
fn names(verified: &Verified, kind: BreakKind, index: Option<u64>) -> bool {
    verified.breaks.iter().any(|b| b.kind == kind && (index.is_none() || b.index == index))
}

fn assert_names(verified: &Verified, kind: BreakKind, index: Option<u64>) {
    assert!(verified.broken.is_some(), "not caught: {verified:#?}");
    assert!(names(verified, kind, index), "{kind:?} at {index:?} not named: {:#?}", verified.breaks);
}

/// Every entry of a log, in order.
fn entries(dir: &Path) -> Vec<Vec<u8>> {
    Stored::open(dir).unwrap().entries().unwrap().map(|read| read.unwrap().1).collect()
}

/// Rewrites the `entries` file of `dir` from `entries`, leaving every
/// other file as it is: what someone without the log key can do.
fn write_entries(dir: &Path, entries: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    entries.iter().for_each(|entry| push_frame(&mut bytes, entry));
    std::fs::write(dir.join("entries"), bytes).unwrap();
}

/// A log of exactly `entries`, signed by `key`: what a platform holding
/// the key can make of its log.
fn signed_log(dir: &Path, key: &SecretKey, entries: &[Vec<u8>]) {
    let options =
        AppendOptions { origin: Some(ORIGIN.into()), durability: Durability::Buffered, ..AppendOptions::default() };
    let (mut log, _) = Appender::open(dir, key.clone(), options).unwrap();
    let mut framed = Vec::new();
    entries.iter().for_each(|entry| push_frame(&mut framed, entry));
    log.append(&Group { entries: &framed, records: &[] }).unwrap();
    log.checkpoint().unwrap();
}

fn receipt(bytes: &[u8]) -> Receipt {
    match Entry::decode(bytes).unwrap() {
        Entry::Receipt(receipt) => receipt,
        other => panic!("not a receipt: {other:?}"),
    }
}

/// The newest checkpoint note of a log, as a regulator collects it.
fn collect(dir: &Path, key: &PublicKey) -> String {
    Stored::open(dir).unwrap().head(Some(key)).unwrap().text()
}

#[test]
fn every_decision_is_provable_with_the_public_key_alone() {
    let (dir, key) = pristine();
    let stored = Stored::open(dir).unwrap();
    let head = stored.head(Some(&key.public())).unwrap();
    assert_eq!((head.checkpoint.origin.as_str(), head.checkpoint.size), (ORIGIN, 601));
    let log = Verifier::ed25519(ORIGIN, key.public()).unwrap();
    for index in [0, 1, 255, 256, 257, 511, 512, 600] {
        let proof = stored.inclusion(index, &head).unwrap();
        let proved = proof.check(&log, &[]).unwrap();
        assert_eq!(proved.entry.index(), index);
    }
    // A receipt's record digest is the record's: a data subject holding
    // the record can tell it is theirs.
    let proof = stored.inclusion(5, &head).unwrap();
    let flow = &sample::flows(12, 600)[4];
    let Entry::Receipt(receipt) = proof.check(&log, &[]).unwrap().entry else { panic!("entry 5 is a receipt") };
    assert_eq!((receipt.flow.as_str(), receipt.record), (flow.id.as_str(), flowgate::record_digest(flow)));
    // Older checkpoints of the history are extended by the newest, with the proof alone.
    let (history, _) = stored.history().unwrap();
    assert!(history.len() >= 2, "the history keeps a checkpoint at creation and at close");
    for old in history {
        let old = old.unwrap();
        let proof = stored.consistency(&old.checkpoint, &head).unwrap();
        proof.check(&old.checkpoint, &log, &[]).unwrap();
    }
}

#[test]
fn receipts_are_compact_on_the_reference_set() {
    let dir = scratch_dir("receipts-size");
    let key = SecretKey::generate().unwrap();
    let count = 20_000;
    let host = host_logging(&dir, &key, options(false));
    for batch in sample::flows(42, count).chunks(256) {
        host.try_evaluate_batch(batch).unwrap();
    }
    drop(host);
    let receipts: Vec<Vec<u8>> =
        entries(&dir).into_iter().filter(|e| matches!(Entry::decode(e), Ok(Entry::Receipt(_)))).collect();
    assert_eq!(receipts.len(), count);
    let mean = receipts.iter().map(Vec::len).sum::<usize>() as f64 / count as f64;
    let on_disk = dir_bytes(&dir) as f64 / count as f64;
    eprintln!("receipts: {mean:.1} bytes each, {on_disk:.1} bytes per receipt on disk");
    assert!(mean <= 160.0, "a receipt is {mean:.1} bytes on average");
    assert!(on_disk <= 256.0, "the log is {on_disk:.1} bytes per receipt on disk");
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() { dir_bytes(&path) } else { std::fs::metadata(&path).unwrap().len() }
        })
        .sum()
}

#[test]
fn an_edited_entry_is_named_and_its_checkpoints_no_longer_hold() {
    // A byte of a receipt changed, as someone without the key would.
    let edited = tampered("receipts-edited", |dir| {
        let mut all = entries(dir);
        let at = all[300].iter().position(|&b| b == b'-').unwrap();
        all[300][at] = b'+';
        write_entries(dir, &all);
    });
    assert_names(&edited, BreakKind::Edited, Some(300));
    assert_names(&edited, BreakKind::Rewritten, None);
    // The same edit with the stored tree recomputed to match: the signed
    // root still tells.
    let rehashed = tampered("receipts-rehashed", |dir| {
        let mut all = entries(dir);
        let mut receipt = receipt(&all[300]);
        receipt.effect = flowgate::transparency::receipt::Effect::Allow;
        all[300] = receipt.encode();
        write_entries(dir, &all);
        let mut leaves = std::fs::read(dir.join("tree/level-00")).unwrap();
        leaves[300 * 32..301 * 32].copy_from_slice(leaf_hash(&all[300]).as_bytes());
        std::fs::write(dir.join("tree/level-00"), leaves).unwrap();
    });
    assert_names(&rehashed, BreakKind::Rewritten, None);
    assert_names(&rehashed, BreakKind::Edited, Some(256));
}

#[test]
fn deleted_inserted_and_reordered_entries_are_named() {
    let deleted = tampered("receipts-deleted", |dir| {
        let mut all = entries(dir);
        all.remove(100);
        write_entries(dir, &all);
    });
    assert_names(&deleted, BreakKind::Deleted, Some(100));
    assert_names(&deleted, BreakKind::Truncated, None);
    let inserted = tampered("receipts-inserted", |dir| {
        let mut all = entries(dir);
        let copy = all[40].clone();
        all.insert(41, copy);
        write_entries(dir, &all);
    });
    assert_names(&inserted, BreakKind::Inserted, Some(41));
    let reordered = tampered("receipts-reordered", |dir| {
        let mut all = entries(dir);
        all.swap(70, 71);
        write_entries(dir, &all);
    });
    assert_names(&reordered, BreakKind::Reordered, Some(70));
    assert_names(&reordered, BreakKind::Reordered, Some(71));
}

#[test]
fn the_newest_entries_deleted_are_caught_with_the_log_key_and_without() {
    // Without the key: entries cut, the checkpoint left.
    let cut = tampered("receipts-cut", |dir| {
        let mut all = entries(dir);
        all.truncate(590);
        write_entries(dir, &all);
    });
    assert_names(&cut, BreakKind::Truncated, Some(590));
    // Without the key, cleverer: the tree and an older signed checkpoint
    // from the history put in both slots. The history still holds the newer one.
    let rolled_back = tampered("receipts-rolled-back", |dir| {
        let stored = Stored::open(dir).unwrap();
        let (history, _) = stored.history().unwrap();
        let first = history[0].as_ref().unwrap().text();
        write_entries(dir, &[]);
        for file in ["tree/level-00", "tree/level-08", "entries.idx"] {
            std::fs::write(dir.join(file), b"").unwrap();
        }
        std::fs::write(dir.join("checkpoint.0"), &first).unwrap();
        std::fs::write(dir.join("checkpoint.1"), &first).unwrap();
    });
    assert_names(&rolled_back, BreakKind::Truncated, None);
    // With the key, the history cut too: nothing inside the log can tell
    // (docs/threat-model.md says so), a checkpoint kept elsewhere does.
    let (pristine, key) = pristine();
    let collected = collect(pristine, &key.public());
    let shorter = scratch_dir("receipts-shorter");
    signed_log(&shorter, key, &entries(pristine)[..590]);
    assert_eq!(verify(&shorter, &key.public(), &[]).broken, None, "alone, a log cut and signed again verifies");
    let caught = verify(&shorter, &key.public(), std::slice::from_ref(&collected));
    assert_names(&caught, BreakKind::Truncated, Some(590));
    // And the same log cut, then grown again past the collected size:
    // another history, named as such.
    let regrown = scratch_dir("receipts-regrown");
    let mut other = entries(pristine)[..590].to_vec();
    other.extend(entries(pristine)[590..].iter().map(|e| {
        let mut receipt = receipt(e);
        receipt.flow.push('x');
        receipt.encode()
    }));
    signed_log(&regrown, key, &other);
    let caught = verify(&regrown, &key.public(), &[collected]);
    assert!(
        names(&caught, BreakKind::Equivocation, None) || names(&caught, BreakKind::Rewritten, None),
        "{:#?}",
        caught.breaks
    );
}

#[test]
fn equivocation_is_named_whatever_the_order_and_an_empty_checkpoint_is_no_problem() {
    let (pristine, key) = pristine();
    let genuine = collect(pristine, &key.public());
    let fork = scratch_dir("receipts-fork");
    let mut forked = entries(pristine);
    let mut last = receipt(&forked[600]);
    last.effect = flowgate::transparency::receipt::Effect::Allow;
    forked[600] = last.encode();
    signed_log(&fork, key, &forked);
    let other = collect(&fork, &key.public());
    for order in [[genuine.clone(), other.clone()], [other.clone(), genuine.clone()]] {
        let verified = verify(pristine, &key.public(), &order);
        assert_eq!(verified.broken.as_ref().map(|b| b.kind), Some(BreakKind::Equivocation), "{:#?}", verified.breaks);
    }
    // A checkpoint of the empty tree, collected at the log's birth, fits
    // every honest log.
    let signer = flowgate::transparency::note::Signer::new(ORIGIN, key.clone()).unwrap();
    let empty = Checkpoint::new(ORIGIN, 0, EMPTY_ROOT).sign(&signer).unwrap().to_text();
    let verified = verify(pristine, &key.public(), &[empty, genuine]);
    assert_eq!((verified.broken, verified.collected), (None, 2));
}

#[test]
fn forged_checkpoints_and_a_wrong_key_are_told_apart() {
    let forged = tampered("receipts-forged", |dir| {
        let text = std::fs::read_to_string(dir.join("checkpoint.1")).unwrap();
        let size = text.lines().nth(1).unwrap().to_owned();
        std::fs::write(dir.join("checkpoint.1"), text.replacen(&format!("\n{size}\n"), "\n9999\n", 1)).unwrap();
    });
    assert_names(&forged, BreakKind::ForgedCheckpoint, None);
    let (pristine, _) = pristine();
    let other = SecretKey::generate().unwrap().public();
    let wrong = verify(pristine, &other, &[]);
    assert_eq!(wrong.broken.as_ref().map(|b| b.kind), Some(BreakKind::WrongKey), "{:#?}", wrong.breaks);
    assert!(wrong.broken.unwrap().detail.contains("is it the right public key?"));
}

#[test]
fn stored_hashes_and_index_offsets_are_checked_against_the_entries() {
    let tree = tampered("receipts-tree", |dir| {
        let mut eights = std::fs::read(dir.join("tree/level-08")).unwrap();
        eights[5] ^= 1;
        std::fs::write(dir.join("tree/level-08"), eights).unwrap();
    });
    assert_names(&tree, BreakKind::Edited, Some(0));
    let index = tampered("receipts-index", |dir| {
        let mut offsets = std::fs::read(dir.join("entries.idx")).unwrap();
        offsets[15] ^= 4;
        std::fs::write(dir.join("entries.idx"), offsets).unwrap();
    });
    assert_names(&index, BreakKind::Edited, Some(256));
    assert_eq!(index.entries, 601, "the entries are read through, whatever the index says");
}

#[test]
fn time_going_backwards_is_named_and_never_written() {
    let (pristine, key) = pristine();
    // A log signed by its key with one receipt dated before the one before.
    let back = scratch_dir("receipts-time");
    let mut all = entries(pristine);
    let mut earlier = receipt(&all[200]);
    earlier.time_ms -= 3 * 86_400_000;
    all[200] = earlier.encode();
    signed_log(&back, key, &all);
    assert_names(&verify(&back, &key.public(), &[]), BreakKind::TimeBackwards, Some(200));
    // A log whose newest entries are dated a day ahead of the clock: the
    // next receipts are dated no earlier.
    let ahead = scratch_dir("receipts-ahead");
    let future =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 86_400_000;
    let mut all = entries(pristine);
    for entry in all.iter_mut().skip(1) {
        let mut receipt = receipt(entry);
        receipt.time_ms = future;
        *entry = receipt.encode();
    }
    signed_log(&ahead, key, &all);
    let host = host_logging(&ahead, key, options(false));
    host.try_evaluate_batch(&sample::flows(5, 20)).unwrap();
    drop(host);
    let verified = verify(&ahead, &key.public(), &[]);
    assert_eq!((verified.entries, verified.broken), (622, None));
    assert!(entries(&ahead)[601..].iter().all(|e| Entry::decode(e).unwrap().time_ms() >= future));
}

#[test]
fn kept_records_are_private_bound_to_their_receipt_and_erasable() {
    let (pristine, _) = pristine();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(pristine.join("records")), 0o700);
        assert_eq!(mode(pristine.join("records/records-0")), 0o600);
    }
    let edit = |name: &str, change: &dyn Fn(&mut Vec<String>)| {
        tampered(name, |dir| {
            let path = dir.join("records/records-0");
            let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
            change(&mut lines);
            std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        })
    };
    let edited = edit("records-edited", &|lines| lines[9] = lines[9].replacen("\"purpose\":\"", "\"purpose\":\"x", 1));
    assert_names(&edited, BreakKind::Edited, Some(10));
    // A forged record placed before the genuine one, and after it: both caught.
    let forged = |lines: &Vec<String>, at: usize| lines[at].replacen("\"purpose\":\"", "\"purpose\":\"x", 1);
    let before = edit("records-before", &|lines| {
        let copy = forged(lines, 9);
        lines.insert(9, copy);
    });
    assert_names(&before, BreakKind::Inserted, Some(10));
    let after = edit("records-after", &|lines| {
        let copy = forged(lines, 9);
        lines.insert(10, copy);
    });
    assert_names(&after, BreakKind::Inserted, Some(10));
    // A record bound to another entry: the policy set's, or one the log does not hold.
    let moved = edit("records-moved", &|lines| lines[0] = lines[0].replacen("{\"index\":1,", "{\"index\":0,", 1));
    assert_names(&moved, BreakKind::Edited, Some(0));
    let beyond = edit("records-beyond", &|lines| {
        let last = lines.last().unwrap().replacen("{\"index\":600,", "{\"index\":700,", 1);
        lines.push(last);
    });
    assert_names(&beyond, BreakKind::Deleted, Some(700));
    // Erasing a record (an individual's deletion request) breaks nothing.
    let erased = edit("records-erased", &|lines| {
        lines.remove(3);
    });
    assert_eq!((erased.broken, erased.erased, erased.records), (None, 1, 599));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let exposed = tampered("records-exposed", |dir| {
            std::fs::set_permissions(dir.join("records/records-0"), std::fs::Permissions::from_mode(0o640)).unwrap();
        });
        assert_names(&exposed, BreakKind::Exposed, None);
        // And a host refuses to keep writing records others can read.
        let (_, key) = self::pristine();
        let dir = copy_of(pristine, "records-exposed-open");
        std::fs::set_permissions(dir.join("records/records-0"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = reference_builder().decision_log(&dir, key.clone(), options(true)).build().unwrap_err();
        assert!(format!("{err:?}").contains("readable by their owner only"), "{err:?}");
    }
}

#[test]
fn opening_checks_what_it_appends_to_and_never_signs_what_no_checkpoint_did() {
    let (pristine, key) = pristine();
    let open = |dir: &Path| reference_builder().decision_log(dir, key.clone(), options(true)).build();
    // Damaged older data (an entry, a stored hash, the entries cut): refused.
    for (name, edit) in [
        (
            "open-entry",
            (|dir: &Path| {
                let mut all = entries(dir);
                all[3][6] ^= 1;
                write_entries(dir, &all);
            }) as fn(&Path),
        ),
        ("open-hash", |dir: &Path| {
            let mut leaves = std::fs::read(dir.join("tree/level-00")).unwrap();
            leaves[33] ^= 1;
            std::fs::write(dir.join("tree/level-00"), leaves).unwrap();
        }),
        ("open-cut", |dir: &Path| {
            let mut all = entries(dir);
            all.truncate(500);
            write_entries(dir, &all);
        }),
    ] {
        let dir = copy_of(pristine, name);
        edit(&dir);
        let err = open(&dir).unwrap_err();
        let chain = crate_error_chain(&err);
        assert!(chain.contains("decision log"), "{name}: {chain}");
        // Refused, and the log left as it was: still the same damage to name.
        assert!(verify(&dir, &key.public(), &[]).broken.is_some(), "{name}");
    }
    // Entries after the last checkpoint (a crash mid-group, or someone
    // without the key adding some) are cut at the next start, never signed.
    let dir = copy_of(pristine, "open-tail");
    let mut all = entries(&dir);
    let mut extra = receipt(&all[600]);
    extra.index = 601;
    extra.flow = "added-without-the-key".into();
    all.push(extra.encode());
    write_entries(&dir, &all);
    let before = verify(&dir, &key.public(), &[]);
    assert_eq!((before.broken.clone(), before.unsigned, before.open), (None, 1, true));
    let host = open(&dir).unwrap();
    assert_eq!((host.decision_log().unwrap().recovery().cut, host.decision_log().unwrap().size()), (1, 601));
    host.try_evaluate_batch(&sample::flows(77, 3)).unwrap();
    drop(host);
    let after = verify(&dir, &key.public(), &[]);
    assert_eq!((after.broken, after.entries, after.unsigned), (None, 605, 0));
    assert!(entries(&dir).iter().all(|e| !String::from_utf8_lossy(e).contains("added-without-the-key")));
    // A tree and an index that lag the entries (synced once a minute) are
    // rebuilt from them.
    let dir = copy_of(pristine, "open-lag");
    std::fs::write(dir.join("tree/level-08"), b"").unwrap();
    let leaves = std::fs::read(dir.join("tree/level-00")).unwrap();
    std::fs::write(dir.join("tree/level-00"), &leaves[..100 * 32]).unwrap();
    std::fs::write(dir.join("entries.idx"), b"").unwrap();
    let host = open(&dir).unwrap();
    let recovery = host.decision_log().unwrap().recovery().clone();
    assert_eq!((recovery.tree_rebuilt, recovery.index_rebuilt), (501, 3), "{recovery:?}");
    drop(host);
    assert_eq!(verify(&dir, &key.public(), &[]).broken, None);
}

/// An error and its sources, as one line.
fn crate_error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn one_log_has_one_writer_one_origin_and_one_format() {
    let key = SecretKey::generate().unwrap();
    let dir = scratch_dir("receipts-one-writer");
    let host = host_logging(&dir, &key, LogOptions::default());
    let err = reference_builder().decision_log(&dir, key.clone(), LogOptions::default()).build().unwrap_err();
    assert!(crate_error_chain(&err).contains("another process"), "{err}");
    drop(host);
    let other_origin = LogOptions { origin: Some("another.example/log".into()), ..LogOptions::default() };
    let err = reference_builder().decision_log(&dir, key.clone(), other_origin).build().unwrap_err();
    assert!(crate_error_chain(&err).contains("another.example/log"), "{}", crate_error_chain(&err));
    let bad_origin = LogOptions { origin: Some("two words".into()), ..LogOptions::default() };
    let fresh = scratch_dir("receipts-bad-origin");
    assert!(reference_builder().decision_log(&fresh, key.clone(), bad_origin).build().is_err());
    // The default origin comes from the key, and stays.
    let log = Audit::open(&dir).unwrap();
    let head = log.stored().head(Some(&key.public())).unwrap();
    assert!(head.checkpoint.origin.starts_with("flowgate.local/"), "{}", head.checkpoint.origin);
    // A log of Flowgate 0.1's format is named, with the release that reads it.
    let old = scratch_dir("receipts-old-format");
    std::fs::write(old.join("segment-00000001.jsonl"), "{}\n").unwrap();
    let err = reference_builder().decision_log(&old, key.clone(), LogOptions::default()).build().unwrap_err();
    assert!(crate_error_chain(&err).contains("Flowgate 0.1"), "{}", crate_error_chain(&err));
    let err = Audit::open(&old).unwrap_err();
    assert!(crate_error_chain(&err).contains("`flowgate audit verify` of Flowgate 0.1"), "{err}");
}

#[test]
fn many_threads_make_one_gap_free_log() {
    for durability in [Durability::Fsync, Durability::Buffered] {
        let dir = scratch_dir(&format!("receipts-threads-{durability:?}"));
        let key = SecretKey::generate().unwrap();
        let host = host_logging(&dir, &key, LogOptions { durability, ..LogOptions::default() });
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
        assert_eq!(host.decision_log().unwrap().size(), 1_201);
        drop(host);
        let verified = verify(&dir, &key.public(), &[]);
        assert_eq!((verified.receipts, verified.broken), (1_200, None), "{durability:?}");
        let mut logged: Vec<String> = entries(&dir)
            .iter()
            .filter_map(|e| match Entry::decode(e).unwrap() {
                Entry::Receipt(receipt) => Some(receipt.flow),
                Entry::PolicySet(_) => None,
            })
            .collect();
        logged.sort();
        let mut expected: Vec<String> = flows.iter().map(|f| f.id.clone()).collect();
        expected.sort();
        assert_eq!(logged, expected, "each decision exactly once");
    }
}

#[test]
fn a_new_policy_set_is_logged_before_the_first_receipt_it_decides() {
    let dir = scratch_dir("receipts-sets");
    let key = SecretKey::generate().unwrap();
    let host = host_logging(&dir, &key, options(false));
    host.try_evaluate_batch(&sample::flows(1, 5)).unwrap();
    assert!(host.remove("lawful-basis"));
    host.try_evaluate_batch(&sample::flows(2, 5)).unwrap();
    drop(host);
    let all = entries(&dir);
    let sets: Vec<u64> = all
        .iter()
        .filter_map(|e| match Entry::decode(e).unwrap() {
            Entry::PolicySet(set) => Some(set.index),
            Entry::Receipt(_) => None,
        })
        .collect();
    assert_eq!(sets, vec![0, 6]);
    assert_eq!(receipt(&all[7]).policy_set, 6);
    let Entry::PolicySet(set) = Entry::decode(&all[6]).unwrap() else { unreachable!() };
    assert!(set.policies.iter().all(|p| p.name != "lawful-basis"));
    // Each receipt reads in words through its set.
    let stats = Audit::open(&dir).unwrap().stats().unwrap();
    assert_eq!((stats.receipts, stats.policy_sets, stats.unreadable), (10, 2, 0));
}

#[test]
fn a_closed_log_fails_closed_and_a_receipt_it_cannot_hold_too() {
    let dir = scratch_dir("receipts-closed");
    let key = SecretKey::generate().unwrap();
    let host = host_logging(&dir, &key, LogOptions::default());
    let mut long = sample::flows(8, 1);
    long[0].id = "x".repeat(2000);
    assert!(host.try_evaluate_batch(&long).is_err(), "an id longer than a receipt holds");
    assert_eq!(host.evaluate_batch(&long)[0].reasons[0].rule(), "receipt-not-written");
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
fn verification_on_every_core_agrees_with_one_and_finds_damage_in_any_chunk() {
    // Three chunks of 65,536 entries, the last ragged.
    let dir = scratch_dir("receipts-chunks");
    let key = SecretKey::generate().unwrap();
    let host = host_logging(&dir, &key, options(true));
    for batch in sample::flows(9, 140_000).chunks(1024) {
        host.try_evaluate_batch(batch).unwrap();
    }
    drop(host);
    let audit = Audit::open(&dir).unwrap();
    let one = audit.verify_with(VerifyOptions { threads: 1, ..VerifyOptions::new(key.public()) }).unwrap();
    let all = audit.verify_with(VerifyOptions { threads: 4, ..VerifyOptions::new(key.public()) }).unwrap();
    assert_eq!(one, all);
    assert_eq!((all.entries, all.receipts, all.records, all.broken.clone()), (140_001, 140_000, 140_000, None));
    // Verified a unit (a chunk) at a time, elsewhere, and joined: the same.
    assert_eq!(Audit::open(&dir).unwrap().units().unwrap(), [0, 1, 2]);
    let checkpoint = Stored::open(&dir).unwrap().head(Some(&key.public())).unwrap().text().to_owned();
    let collected = [checkpoint];
    assert_eq!(joined(&dir, &key.public(), &collected, |_, json| json), verify(&dir, &key.public(), &collected));
    // The units' results are what the join uses (here, one that lies).
    let lying = joined(&dir, &key.public(), &[], |unit, json| {
        if unit == 1 { json.replace("\"receipts\":65536", "\"receipts\":65535") } else { json }
    });
    assert_eq!(lying.receipts, 139_999);
    // Damage in the second chunk, and an index pointing a chunk elsewhere.
    let damaged = copy_of(&dir, "receipts-chunks-damaged");
    let mut bytes = std::fs::read(damaged.join("entries")).unwrap();
    let offset = Stored::open(&damaged).unwrap().entry_offset(100_000).unwrap() as usize;
    bytes[offset + 5] ^= 0x40;
    std::fs::write(damaged.join("entries"), bytes).unwrap();
    let mut offsets = std::fs::read(damaged.join("entries.idx")).unwrap();
    offsets[2 * 256 * 8 + 7] ^= 1;
    std::fs::write(damaged.join("entries.idx"), offsets).unwrap();
    let verified = verify(&damaged, &key.public(), &[]);
    assert_names(&verified, BreakKind::Edited, Some(100_000));
    assert_names(&verified, BreakKind::Edited, Some(131_072));
    assert_eq!(verified.entries, 140_001);
    assert_eq!(joined(&damaged, &key.public(), &[], |_, json| json), verified);
    // Damage older than the window a start re-reads is not refused at
    // open (docs/receipts.md says so), and never signed over: the next
    // checkpoints still carry the original tree, and verify names it.
    let older = copy_of(&dir, "receipts-chunks-older");
    let mut bytes = std::fs::read(older.join("entries")).unwrap();
    let offset = Stored::open(&older).unwrap().entry_offset(1_000).unwrap() as usize;
    bytes[offset + 5] ^= 0x40;
    std::fs::write(older.join("entries"), bytes).unwrap();
    let original = Stored::open(&dir).unwrap().root_at(140_001).unwrap();
    let host = host_logging(&older, &key, options(true));
    host.try_evaluate_batch(&sample::flows(10, 10)).unwrap();
    drop(host);
    let stored = Stored::open(&older).unwrap();
    assert_eq!(stored.root_at(140_001).unwrap(), original);
    let verified = verify(&older, &key.public(), &[]);
    assert_names(&verified, BreakKind::Edited, Some(1_000));
    // And a proof of the damaged entry is refused, not printed.
    let head = stored.head(Some(&key.public())).unwrap();
    assert!(stored.inclusion(1_000, &head).is_err());
    assert!(stored.inclusion(1_001, &head).is_ok());
}

#[test]
fn replay_says_what_changed_and_the_archive_is_checked_against_the_set_id() {
    let dir = scratch_dir("receipts-replay");
    let key = SecretKey::generate().unwrap();
    let (log, archive) = (dir.join("log"), dir.join("archive"));
    let host = reference_builder().decision_log(&log, key.clone(), options(true)).archive(&archive).build().unwrap();
    let flows = sample::flows(21, 100);
    host.try_evaluate_batch(&flows).unwrap();
    let set = host.policy_set();
    drop(host);
    let audit = Audit::open(&log).unwrap();
    let without_lawful_basis = reference_builder().build().unwrap();
    assert!(without_lawful_basis.remove("lawful-basis"));
    let mut changed = Vec::new();
    let kept = audit
        .for_each_record(|logged| {
            let changes = logged.changes(&without_lawful_basis.evaluate(&logged.record));
            if !changes.is_empty() {
                changed.push(changes.to_string());
            }
        })
        .unwrap();
    assert_eq!((kept.kept, kept.records, kept.without, kept.unusable), (true, 100, 0, 0));
    let named = |c: &String| c.contains("lawful-basis/") || c.contains("flowgate/no-policy-applied");
    assert!(!changed.is_empty() && changed.iter().all(named), "{changed:?}");
    assert!(changed.iter().any(|c| c.contains("effect ")), "{changed:?}");
    // The archive gives back the set, checked; a list changed is refused.
    let archived = flowgate::Archive::open(&archive).unwrap();
    assert_eq!(archived.set(&set).unwrap().len(), 10);
    let path = archive.join("sets").join(format!("{set}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let dropped = text.replacen("policy automated-decisions", "policy x-automated-decisions", 1);
    std::fs::write(&path, dropped).unwrap();
    let err = archived.set(&set).unwrap_err();
    assert!(err.to_string().contains("not that of policy set"), "{err}");
    // A bundle swapped for another under the same list: its line says no.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bundles = file["bundles"].as_array_mut().unwrap();
    bundles.swap(0, 1);
    std::fs::write(&path, file.to_string()).unwrap();
    let err = archived.set(&set).unwrap_err();
    assert!(err.to_string().contains("not the policy its line names"), "{err}");
}

#[test]
fn a_proof_that_does_not_prove_is_refused_whatever_was_changed() {
    let (pristine, key) = pristine();
    let stored = Stored::open(pristine).unwrap();
    let head = stored.head(Some(&key.public())).unwrap();
    let proof = stored.inclusion(300, &head).unwrap();
    let log = Verifier::ed25519(ORIGIN, key.public()).unwrap();
    proof.check(&log, &[]).unwrap();
    let mut changed: Vec<(&str, InclusionProof)> = Vec::new();
    let other = stored.inclusion(301, &head).unwrap();
    changed.push(("leaf bytes", InclusionProof { receipt: other.receipt.clone(), ..proof.clone() }));
    changed.push(("index", InclusionProof { index: 301, ..proof.clone() }));
    changed.push(("tree size", InclusionProof { tree_size: 600, ..proof.clone() }));
    for at in 0..proof.proof.len() {
        let mut path = proof.proof.clone();
        path[at] = other.proof[at].clone();
        if path[at] == proof.proof[at] {
            path[at] = leaf_hash(b"another").to_base64();
        }
        changed.push(("a proof hash", InclusionProof { proof: path, ..proof.clone() }));
    }
    changed.push(("a hash dropped", InclusionProof { proof: proof.proof[1..].to_vec(), ..proof.clone() }));
    let text = proof.checkpoint.clone();
    changed.push((
        "checkpoint size",
        InclusionProof { checkpoint: text.replacen("\n601\n", "\n602\n", 1), ..proof.clone() },
    ));
    changed.push((
        "checkpoint origin",
        InclusionProof { checkpoint: text.replacen(ORIGIN, "platform.example/other", 1), ..proof.clone() },
    ));
    let signature = text.rsplit(' ').next().unwrap().trim_end();
    let mut forged = signature.to_owned().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = text.replacen(signature, std::str::from_utf8(&forged).unwrap(), 1);
    changed.push(("signature", InclusionProof { checkpoint: forged, ..proof.clone() }));
    let root_line = text.lines().nth(2).unwrap();
    changed.push((
        "root",
        InclusionProof { checkpoint: text.replacen(root_line, &leaf_hash(b"x").to_base64(), 1), ..proof.clone() },
    ));
    for (what, changed) in changed {
        assert!(changed.check(&log, &[]).is_err(), "{what} changed, and the proof still checks");
    }
    // A witness required and absent: refused; the right witness: proved.
    let witness =
        flowgate::transparency::cosignature::Cosigner::new("regulator.example/w", SecretKey::generate().unwrap())
            .unwrap();
    assert!(proof.check(&log, &[witness.verifier()]).is_err());
    let mut note = flowgate::transparency::note::Note::parse(text.as_bytes()).unwrap();
    note.push(witness.cosign(&note, 1_800_000_000)).unwrap();
    let cosigned = InclusionProof { checkpoint: note.to_text(), ..proof.clone() };
    cosigned.check(&log, &[witness.verifier()]).unwrap();
    let opened = SignedCheckpoint::open(note.to_text().as_bytes(), &log, &[witness.verifier()]).unwrap();
    assert_eq!(opened.cosigned_by(&witness.verifier()), Some(1_800_000_000));
}

#[test]
fn the_worked_example_of_the_docs_is_what_flowgate_makes_and_checks() {
    // `host/log/testdata/docs_example.py` made it from the formats alone.
    let example = std::fs::read_to_string(crate::repo_path("host/log/testdata/docs_example.txt")).unwrap();
    let field = |name: &str| {
        example.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or_else(|| panic!("{name}")).to_owned()
    };
    let vectors = std::fs::read_to_string(crate::repo_path("host/log/testdata/entry_vectors.txt")).unwrap();
    let entries: Vec<Vec<u8>> = vectors
        .lines()
        .filter(|l| !l.starts_with('#'))
        .take(3)
        .map(|l| {
            let hex = l.split(' ').nth(1).unwrap();
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
        })
        .collect();
    let key = SecretKey::from_seed(&[7; 32]);
    assert_eq!(field("public"), key.public().to_string());
    // The same three entries, logged by Flowgate: the same checkpoint, byte
    // for byte (Ed25519 signatures are deterministic), and the same proof.
    let dir = scratch_dir("receipts-docs-example");
    signed_log(&dir, &key, &entries);
    let stored = Stored::open(&dir).unwrap();
    let head = stored.head(Some(&key.public())).unwrap();
    let checkpoint: String = serde_json::from_str(&field("checkpoint")).unwrap();
    assert_eq!(head.text(), checkpoint);
    let proof = stored.inclusion(1, &head).unwrap();
    assert_eq!(proof.to_json(), field("proof"));
    let vkey = field("vkey");
    let log = Verifier::parse_vkey(&vkey).unwrap();
    assert_eq!(log, Verifier::ed25519(ORIGIN, key.public()).unwrap());
    proof.check(&log, &[]).unwrap();
    // And the page shows exactly these.
    let page = std::fs::read_to_string(crate::repo_path("docs/receipts.md")).unwrap();
    for shown in [field("proof"), vkey, key.public().to_string(), checkpoint.trim_end().to_owned()] {
        assert!(page.contains(&shown), "docs/receipts.md does not show {shown}");
    }
}
