//! Loading a bundle as an attacker would hand it over: limits above the
//! platform's ceilings, modules built to make the compiler slow, files that
//! are links, FIFOs or gigabytes, text that forges log lines. Every load
//! finishes quickly, or is refused naming the cause; one admission path
//! holds at start-up as on reload.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use flowgate::{AboveCeiling, Bundle, BundleError, Error, FileError, FileProblem, Host, Limits, LoadError, ShapeError};

use crate::{flowgate, reference_bundles, scratch_dir};

const HEAD: &str = "name = \"shaped\"\nversion = \"1.0.0\"\nregulator = \"nobody\"\narticles = []\n";

/// A guest that answers nothing but loads: the ABI shell with `body` as an extra function.
fn shell(extra: &str, rules: &str) -> Vec<u8> {
    let rules_len = rules.len();
    wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 2)
            (data (i32.const 16) "{rules}")
            (func (export "flowgate_abi_version") (result i32) (i32.const 2))
            {schema}
            (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 4096))
            (func (export "flowgate_rules") (result i64) (i64.const {packed}))
            (func (export "flowgate_init") (param i32) (result i64) (i64.const 0))
            (func (export "flowgate_evaluate") (param i32) (result i64) (i64.const 0))
            {extra})"#,
        rules = rules.replace('\\', "\\\\").replace('"', "\\\""),
        packed = (16i64 << 32) | rules_len as i64,
        schema = crate::schema_func(65536),
    ))
    .unwrap()
}

fn load(manifest: &str, wasm: Vec<u8>) -> Result<Host, Error> {
    Host::builder().bundle(Bundle::from_bytes("shaped", manifest, wasm)?).build()
}

/// Guards against a hang, not a benchmark: generous on a loaded machine.
fn within(limit: Duration, what: &str, f: impl FnOnce()) {
    let started = Instant::now();
    f();
    assert!(started.elapsed() < limit, "{what} took {:?}", started.elapsed());
}

#[test]
fn a_manifest_may_not_lift_its_limits_above_the_ceilings() {
    for (limit, field) in [
        ("deadline_ms = 9223372036854775807", "deadline_ms"),
        ("memory_bytes = 1073741824", "memory_bytes"),
        ("table_elements = 100000000", "table_elements"),
    ] {
        let err = load(&format!("{HEAD}[limits]\n{limit}\n"), shell("", "[]")).unwrap_err();
        assert!(
            matches!(&err, Error::Load(LoadError::AboveCeiling { source: AboveCeiling { field: f, .. }, .. }) if *f == field),
            "{err}"
        );
        assert!(err.to_string().contains("above the host's ceiling"), "{err}");
    }
    // Up to the ceiling is the manifest's to ask; the platform sets the ceiling.
    let host = load(&format!("{HEAD}[limits]\ndeadline_ms = 1000\n"), shell("", "[]")).unwrap();
    assert_eq!(host.policies()[0].limits.deadline_ms, 1000);
    let strict = Host::builder()
        .ceilings(Limits { deadline_ms: 50, ..Limits::DEFAULT_CEILINGS })
        .bundle(Bundle::from_bytes("shaped", HEAD, shell("", "[]")).unwrap())
        .build()
        .unwrap();
    assert_eq!(strict.policies()[0].limits.deadline_ms, 50, "the default is lowered to the ceiling");
}

#[test]
fn modules_shaped_to_slow_the_compiler_are_refused_before_compiling() {
    // 30,000 nested loops kept Cranelift busy for seconds; now the shape check stops it.
    // Flat `loop ... end` text: the folded form would recurse in the test's own parser.
    let nested = format!("(func {}{})", "loop ".repeat(30_000), "end ".repeat(30_000));
    within(Duration::from_secs(5), "refusing deep nesting", || {
        let err = load(HEAD, shell(&nested, "[]")).unwrap_err();
        assert!(matches!(err, Error::Load(LoadError::Shape { source: ShapeError::Nesting { .. }, .. })), "{err}");
    });
    let many = "(func)".repeat(30_000);
    let err = load(HEAD, shell(&many, "[]")).unwrap_err();
    assert!(matches!(err, Error::Load(LoadError::Shape { source: ShapeError::Functions { .. }, .. })), "{err}");
    // At the caps, compiling stays bounded: the deepest nesting allowed, in many functions.
    let deepest = format!("(func {}{})", "block ".repeat(512), "end ".repeat(512)).repeat(64);
    within(Duration::from_secs(60), "compiling a module at the nesting cap", || {
        load(HEAD, shell(&deepest, "[]")).unwrap();
    });
}

/// A bundle directory with this manifest, and `policy.wasm` made by `module`.
fn bundle_dir(root: &Path, name: &str, module: impl FnOnce(&Path)) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(flowgate::MANIFEST_FILE), HEAD).unwrap();
    module(&dir.join(flowgate::MODULE_FILE));
    dir
}

#[test]
fn bundle_files_must_be_regular_files_within_their_caps() {
    let root = scratch_dir("loading-files");
    let fifo = bundle_dir(&root, "fifo", |path| {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success());
    });
    let zero = bundle_dir(&root, "zero", |path| symlink("/dev/zero", path).unwrap());
    let sparse = bundle_dir(&root, "sparse", |path| {
        std::fs::File::create(path).unwrap().set_len(2 << 30).unwrap();
    });
    within(Duration::from_secs(5), "refusing hostile files", || {
        for (dir, expected) in [
            (&fifo, FileProblem::NotRegular),
            (&zero, FileProblem::Link),
            (&sparse, FileProblem::TooLarge { size: 2 << 30, cap: 16 << 20 }),
        ] {
            let err = Bundle::from_dir(dir).unwrap_err();
            assert!(
                matches!(&err, BundleError::File(FileError::Refused { problem, .. }) if *problem == expected),
                "{}: {err}",
                dir.display()
            );
        }
    });

    // A manifest linked to a secret is refused without a byte of the secret in the error.
    let secret = root.join("secret");
    std::fs::write(&secret, "password = \"hunter2\"\n").unwrap();
    let linked = root.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    symlink(&secret, linked.join(flowgate::MANIFEST_FILE)).unwrap();
    std::fs::write(linked.join(flowgate::MODULE_FILE), shell("", "[]")).unwrap();
    let err = Bundle::from_dir(&linked).unwrap_err();
    assert!(matches!(&err, BundleError::File(FileError::Refused { problem: FileProblem::Link, .. })), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    // The CLI refuses such a directory at start-up without hanging on the FIFO.
    within(Duration::from_secs(10), "check over a hostile directory", || {
        let run = flowgate(&["check", "--policies", root.to_str().unwrap(), "--allow-unsigned", "-"], b"");
        assert_eq!(run.status, 2, "{}", run.stderr);
    });
}

#[test]
fn guest_text_cannot_forge_log_lines_or_bloat_decisions() {
    // A configuration error is the guest's own text: escaped and capped.
    let refusing = wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 16) "[]")
            (data (i32.const 64) "bad key\0aflowgate: activated `evil` 9.9.9\1b[2J")
            (func (export "flowgate_abi_version") (result i32) (i32.const 2))
            {schema}
            (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 4096))
            (func (export "flowgate_rules") (result i64) (i64.const 0x1000000002))
            (func (export "flowgate_init") (param i32) (result i64) (i64.const 0x400000002c))
            (func (export "flowgate_evaluate") (param i32) (result i64) (i64.const 0)))"#,
        schema = crate::schema_func(32768),
    ))
    .unwrap();
    let err = load(HEAD, refusing).unwrap_err().to_string();
    assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("bad key\\u{a}flowgate: activated"), "{err}");

    // Rule tables: every text a decision would carry is capped and printable.
    let huge = "x".repeat(16 << 10);
    for (rules, expected) in [
        (format!(r#"[{{"name":"r","article":"a","message":"{huge}"}}]"#), "at most 256 bytes"),
        (r#"[{"name":"r","article":"a\u001b[2J","message":"m"}]"#.to_owned(), "printable"),
        (r#"[{"name":"policy-fault","article":"a","message":"m"}]"#.to_owned(), "host gives its own reasons"),
        (r#"[{"name":"Bad Name","article":"a","message":"m"}]"#.to_owned(), "lower-case"),
        (
            r#"[{"name":"r","article":"a","message":"m"},{"name":"r","article":"a","message":"m"}]"#.to_owned(),
            "appears twice",
        ),
    ] {
        let err = load(HEAD, shell("", &rules)).unwrap_err();
        assert!(
            matches!(&err, Error::Load(LoadError::Rules { problem, .. }) if problem.contains(expected)),
            "{expected}: {err}"
        );
    }

    // No bundle may speak as the host.
    let err = load(&HEAD.replace("shaped", "flowgate"), shell("", "[]")).unwrap_err();
    assert!(matches!(err, Error::Bundle(BundleError::ManifestValue { field: "name", .. })), "{err}");
}

#[test]
fn start_up_runs_the_bundles_own_vectors_as_reload_does() {
    let dir = scratch_dir("loading-admission");
    let reference = reference_bundles().into_iter().find(|b| b.manifest.name == "lawful-basis").unwrap();
    let manifest = flowgate_reference_set::manifest("lawful-basis")
        .unwrap()
        .replace("effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]", "effect = \"allow\"");
    std::fs::create_dir_all(dir.join("lawful-basis")).unwrap();
    std::fs::write(dir.join("lawful-basis").join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(dir.join("lawful-basis").join(flowgate::MODULE_FILE), &reference.wasm).unwrap();

    let err = Host::builder().policy_dir(&dir).build().err().expect("a bundle failing its vectors is refused");
    assert!(matches!(err, Error::Load(LoadError::VectorsFailed { .. })), "{err}");
    let run = flowgate(&["check", "--policies", dir.to_str().unwrap(), "--allow-unsigned", "-"], b"");
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("fails 1 of its test vectors"), "{}", run.stderr);
}
