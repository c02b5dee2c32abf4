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
            (func (export "flowgate_abi_version") (result i32) (i32.const {version}))
            {schema}
            (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 4096))
            (func (export "flowgate_rules") (result i64) (i64.const {packed}))
            (func (export "flowgate_init") (param i32) (result i64) (i64.const 0))
            (func (export "flowgate_evaluate") (param i32) (result i64) (i64.const 0))
            {extra})"#,
        rules = rules.replace('\\', "\\\\").replace('"', "\\\""),
        packed = (16i64 << 32) | rules_len as i64,
        schema = crate::schema_func(65536),
        version = flowgate::sdk::ABI_VERSION,
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

/// A module at a corner of the shape caps: `functions` functions of type
/// `[] -> [i64]`, each declaring `locals` i64 locals, with `nesting` loops
/// nested (each looping back) around updates of its locals (each update
/// keeps a local live across every loop), as many updates as `bytes` per
/// function allow. Encoded by hand: the text format cannot declare 50,000
/// locals in a few bytes, and the binary does.
fn corner_module(functions: u32, nesting: u32, locals: u32, bytes: usize) -> Vec<u8> {
    fn leb(mut value: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            out.push(if value == 0 { byte } else { byte | 0x80 });
            if value == 0 {
                break;
            }
        }
    }
    let mut body = Vec::with_capacity(bytes);
    if locals > 0 {
        body.push(1);
        leb(u64::from(locals), &mut body);
        body.push(0x7e);
    } else {
        body.push(0);
    }
    body.extend([0x03, 0x40].repeat(nesting as usize));
    let tail = if locals > 0 { 6 } else { 5 } * nesting as usize + 3;
    let mut update = 0u64;
    while body.len() + tail + 12 <= bytes {
        if locals == 0 {
            body.push(0x01);
            continue;
        }
        let local = update % u64::from(locals);
        body.push(0x20);
        leb(local, &mut body);
        body.extend([0x42, 0x01, 0x7c, 0x21]);
        leb(local, &mut body);
        update += 1;
    }
    for _ in 0..nesting {
        body.extend(if locals > 0 {
            &[0x20, 0x00, 0xa7, 0x0d, 0x00, 0x0b][..]
        } else {
            &[0x41, 0x00, 0x0d, 0x00, 0x0b]
        });
    }
    body.extend(if locals > 0 { &[0x20, 0x00, 0x0b][..] } else { &[0x42, 0x00, 0x0b] });

    let mut code = Vec::new();
    leb(u64::from(functions), &mut code);
    let mut entry = Vec::new();
    leb(body.len() as u64, &mut entry);
    entry.extend(&body);
    for _ in 0..functions {
        code.extend(&entry);
    }
    let mut funcs = Vec::new();
    leb(u64::from(functions), &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions as usize));
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    for (id, section) in [(1u8, vec![1, 0x60, 0, 1, 0x7e]), (3, funcs), (10, code)] {
        wasm.push(id);
        leb(section.len() as u64, &mut wasm);
        wasm.extend(section);
    }
    wasm
}

/// The class: compile time without bound. Cranelift's time is not linear
/// in anything the shape caps see (values live across many loops take
/// minutes in a module of kilobytes), so a host compiling in a child
/// process bounds it with a CPU-time limit instead: at every corner of the
/// caps (functions × nesting × locals × size, each at its least and at its
/// cap, a corner's other dimensions filled as far as the module cap
/// allows), and for the module of the independent report (64 functions of
/// 512 nested loops around 1,600 live locals, 1 MB: 216 s in-process),
/// loading finishes within the limit: compiled (then refused, as these
/// modules export no policy), or refused naming the limit. The kernel
/// counts the CPU time; nothing here depends on the wall clock, so a
/// loaded machine changes how long this takes, not what it finds.
#[test]
fn every_corner_of_the_shape_caps_compiles_or_is_refused_within_the_cpu_limit() {
    let caps = flowgate::LoadLimits::default();
    let sandbox = flowgate::CompileSandbox::new(env!("CARGO_BIN_EXE_flowgate-compile-child"))
        .cpu_seconds(2)
        .limit_set_by("the test");
    let mut corners = Vec::new();
    for functions in [1, caps.functions] {
        for nesting in [0, caps.nesting] {
            for locals in [0, caps.locals] {
                for full in [false, true] {
                    let most = ((caps.module_bytes as usize - 4096) / functions as usize)
                        .min(caps.function_bytes as usize)
                        - 8;
                    // Each loop takes 8 bytes: the least is the loops and a few updates.
                    let bytes = if full { most } else { (8 * nesting as usize + 64).min(most) };
                    let nesting = nesting.min(((bytes - 24) / 8) as u32);
                    corners.push((functions, nesting, locals, bytes));
                }
            }
        }
    }
    let report = (64, 512, 1_600, 16_000);
    corners.push(report);
    let mut compiled = 0;
    for (functions, nesting, locals, bytes) in corners {
        let wasm = corner_module(functions, nesting, locals, bytes);
        let size = wasm.len();
        let loaded = Host::builder()
            .compile_in_child(sandbox.clone())
            .bundle(Bundle::from_bytes("corner", HEAD, wasm).unwrap())
            .build();
        let err = loaded.err().expect("no policy is exported");
        eprintln!("{functions} functions, nesting {nesting}, {locals} locals, {size} bytes: {err}");
        let out_of_time = match err {
            Error::Load(LoadError::NoPolicyExported { .. }) => false,
            Error::Load(err @ LoadError::CompileTimedOut { cpu_seconds: 2, .. }) => {
                let message = err.to_string();
                assert!(message.contains("2 s of CPU time") && message.contains("(set by the test)"), "{message}");
                true
            }
            other => panic!("neither compiled nor out of time: {other}"),
        };
        compiled += usize::from(!out_of_time);
        // Minutes of CPU time: refused, however fast or loaded the machine.
        let corner = (functions, nesting, locals, bytes);
        assert!(out_of_time || corner != report, "the report's module is refused");
    }
    assert!(compiled >= 4, "the small corners compile");
}
/// A compile child that never answers (here `sleep`, which reads nothing
/// and uses no CPU time) is stopped once it has used no CPU time for four
/// times the limit, and the module refused as the child's failure, not as
/// slow to compile: a host never waits for a stalled child for ever.
#[test]
fn a_compile_child_that_stalls_is_stopped_and_named() {
    let sandbox = flowgate::CompileSandbox::new("sleep").arg("600").cpu_seconds(1);
    let loaded = Host::builder()
        .compile_in_child(sandbox)
        .bundle(Bundle::from_bytes("stalled", HEAD, shell("", "[]")).unwrap())
        .build();
    match loaded.err().expect("a stalled child compiles nothing") {
        Error::Load(LoadError::CompileChild { source, .. }) => {
            assert!(source.to_string().contains("used no CPU time for 4 s"), "{source}")
        }
        other => panic!("not the child's failure: {other}"),
    }
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
            (func (export "flowgate_abi_version") (result i32) (i32.const {version}))
            {schema}
            (func (export "flowgate_buffer") (param i32) (result i32) (i32.const 4096))
            (func (export "flowgate_rules") (result i64) (i64.const 0x1000000002))
            (func (export "flowgate_init") (param i32) (result i64) (i64.const 0x400000002c))
            (func (export "flowgate_evaluate") (param i32) (result i64) (i64.const 0)))"#,
        schema = crate::schema_func(32768),
        version = flowgate::sdk::ABI_VERSION,
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

/// Globals and table elements live outside linear memory: they count
/// against the memory cap, from the module's declarations, before any
/// instance exists. A million globals (16 MB per instance, 16 bytes each)
/// beside two pages of memory is over the 16 MiB cap and refused; the same
/// memory without them loads.
#[test]
fn globals_and_tables_count_against_the_memory_cap() {
    let globals = "(global i64 (i64.const 0))".repeat(1_050_000);
    let started = Instant::now();
    let err = load(HEAD, shell(&globals, "[]")).err().expect("refused");
    assert!(
        matches!(&err, Error::Load(LoadError::Shape { source: ShapeError::Footprint { cap, .. }, .. }) if *cap == 16 << 20),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "refused before compiling: {:?}", started.elapsed());
    // A table at the table cap is 80 KB: within a small memory cap it is refused too.
    let limits = Limits { memory_bytes: 192 << 10, ..Limits::default() };
    let table = "(table 10000 funcref)";
    let err = Host::builder()
        .limits(limits)
        .bundle(Bundle::from_bytes("shaped", HEAD, shell(table, "[]")).unwrap())
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("memory, globals and tables"), "{err}");
    Host::builder()
        .bundle(Bundle::from_bytes("shaped", HEAD, shell("", "[]")).unwrap())
        .build()
        .expect("the shell loads");
}

/// Every code point of the escape class that a policy can put in its rule
/// texts refuses the bundle (a rule text must show as it is), and one in
/// a directory's name, a bundle's origin or a record's field reaches no
/// listing, event or decision as it is: U+2028 starts no forged line.
#[test]
fn separators_and_format_characters_forge_no_line() {
    for ch in ['\u{2028}', '\u{2029}', '\u{85}', '\u{202e}', '\u{2067}', '\u{200b}', '\u{feff}'] {
        // Written as a JSON escape: the rule table's parser decodes it.
        let json = format!("\\u{:04x}", ch as u32);
        let rules = format!(r#"[{{"name":"r","article":"a","message":"ok{json}flowgate: activated `evil`"}}]"#);
        let err = load(HEAD, shell("", &rules)).err().expect("refused").to_string();
        assert!(err.contains("printable"), "U+{:04X}: {err}", ch as u32);
        assert!(!err.contains(ch), "U+{:04X} reached the message: {err:?}", ch as u32);
    }

    // A directory named to forge `flowgate verify`'s "ok" line.
    let root = scratch_dir("forged-names");
    let forged = root.join("x\u{2028}ok      evil 1.0.0 `y`: signed by cac\nok      z");
    std::fs::create_dir_all(&forged).unwrap();
    let (_, manifest, wasm) = flowgate_reference_set::bundles().next().unwrap();
    std::fs::write(forged.join("manifest.toml"), manifest).unwrap();
    std::fs::write(forged.join("policy.wasm"), wasm).unwrap();
    let key = flowgate::SecretKey::generate().unwrap();
    let trust = root.join("trust.toml");
    std::fs::write(&trust, format!("[[key]]\nid = \"k\"\npublic = \"{}\"\nholder = \"h\"\n", key.public())).unwrap();
    let run = flowgate(&["verify", "--trust", trust.to_str().unwrap(), forged.to_str().unwrap()], b"");
    assert_eq!(run.status, 1, "unsigned: refused");
    assert_eq!(run.stdout.lines().count(), 2, "one line per bundle and the summary: {:?}", run.stdout);
    assert!(!run.stdout.contains('\u{2028}') && run.stdout.contains("x\\u{2028}ok"), "{:?}", run.stdout);

    // `policies` lists the same bundle, loaded unsigned.
    let run = flowgate(&["policies", "--policies", root.to_str().unwrap(), "--allow-unsigned"], b"");
    assert!(!run.stdout.contains('\u{2028}') && !run.stderr.contains('\u{2028}'), "{}{}", run.stdout, run.stderr);

    // An event naming the directory.
    let host = Host::builder().build().unwrap();
    let events = host.subscribe();
    let broken = Bundle::from_bytes(forged.to_str().unwrap(), HEAD, b"not wasm".to_vec()).unwrap();
    assert!(host.load(&broken).is_err());
    let line = events.try_recv().unwrap().to_string();
    assert!(!line.contains('\u{2028}') && !line.contains('\n') && line.contains("\\u{2028}"), "{line:?}");

    // A record's id in a decision's JSON: the same value, escaped for JSON.
    let flow = flowgate::sdk::FlowRecord::from_json(
        "{\"id\":\"a\u{2028}b\u{202e}c\",\"platform\":{\"id\":\"p\"},\"action\":\"use\",\"data\":{\"categories\":[\"contact\"]},\"purpose\":\"service\"}"
            .as_bytes(),
    )
    .unwrap();
    let json = crate::reference_host().evaluate(&flow).to_json();
    assert!(json.starts_with(r#"{"id":"a\u2028b\u202ec","#), "{json}");
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["id"], "a\u{2028}b\u{202e}c", "the value is unchanged");
}
