//! The `flowgate` binary itself, through its `main`: exit status, stdout and
//! stderr as a shell or a CI job sees them. (`tests/all/cli.rs` runs the
//! command in-process through `flowgate_cli::run`, which `main` could
//! still get wrong.)

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Runs the built `flowgate` with `args`, feeding it `stdin`.
fn flowgate(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowgate binary starts");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from another thread, so a large input cannot deadlock on full pipes.
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().unwrap();
    // The binary may exit before reading its input (usage errors): a broken pipe is fine.
    let _ = writer.join().unwrap();
    output
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("flowgate exits, it is not killed by a signal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// An empty scratch directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const USE: &str = r#"{"id":"a","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#;
const NO_BASIS: &str =
    r#"{"id":"b","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#;

#[test]
fn valid_input_exits_0_with_one_decision_per_line() {
    let output = flowgate(&["check", "-"], format!("{USE}\n\n{NO_BASIS}\n").as_bytes());
    let stdout = text(&output.stdout);
    assert_eq!(status(&output), 0, "{}", text(&output.stderr));
    let effects: Vec<String> = stdout
        .lines()
        .map(|line| line.split("\"effect\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(effects, ["allow", "deny"], "{stdout}");
    assert!(text(&output.stderr).contains("2 records"), "{}", text(&output.stderr));
}

#[test]
fn invalid_lines_exit_1_and_the_rest_is_decided() {
    let output = flowgate(&["check", "-"], format!("{USE}\nnot json\n{NO_BASIS}\n").as_bytes());
    assert_eq!(status(&output), 1, "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), 2);
    assert!(text(&output.stderr).contains("line 2: a record is a JSON object"), "{}", text(&output.stderr));
}

#[test]
fn usage_input_and_loading_errors_exit_2() {
    for args in [
        &[][..],
        &["check"],
        &["check", "--no-such-flag", "-"],
        &["frobnicate"],
        &["check", "/no/such/file.jsonl"],
        &["check", "--policies", "/no/such/dir", "-"],
        &["test", "/no/such/bundle"],
    ] {
        let output = flowgate(args, b"");
        assert_eq!(status(&output), 2, "flowgate {args:?}: {}", text(&output.stderr));
        assert!(output.stdout.is_empty(), "flowgate {args:?} printed {}", text(&output.stdout));
        assert!(!output.stderr.is_empty(), "flowgate {args:?} said nothing on stderr");
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [["--help"], ["--version"]] {
        let output = flowgate(&args, b"");
        assert_eq!(status(&output), 0, "flowgate {args:?}");
        assert!(text(&output.stdout).contains("flowgate"), "{}", text(&output.stdout));
    }
}

#[test]
fn test_exits_0_on_the_reference_set_and_1_on_a_failing_vector() {
    let output = flowgate(&["test"], b"");
    assert_eq!(status(&output), 0, "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("10 passed, 0 failed"), "{}", text(&output.stdout));

    let bundle = scratch_dir("failing-vector").join("lawful-basis");
    std::fs::create_dir_all(&bundle).unwrap();
    let manifest = flowgate_reference_set::manifest("lawful-basis")
        .unwrap()
        .replace("effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]", "effect = \"allow\"");
    std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    let wasm = flowgate_reference_set::bundles().find(|(name, _, _)| *name == "lawful-basis").unwrap().2;
    std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm).unwrap();
    let output = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert_eq!(status(&output), 1, "{}", text(&output.stdout));
    assert!(text(&output.stdout).contains("FAIL lawful-basis 1.0.0"), "{}", text(&output.stdout));
}

/// A module of `functions` functions of type `[] -> [i64]`, each `loops`
/// nested loops around updates of `locals` i64 locals, `bytes` long: each
/// update keeps a local live across every loop, which makes Cranelift's
/// register allocation take minutes at 64 × 512 × 1,600 (1 MB, inside
/// every shape cap). Encoded by hand: the text format would be megabytes.
fn slow_to_compile(functions: u8, loops: usize, locals: u16, bytes: usize) -> Vec<u8> {
    fn leb(mut value: usize, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    let mut body = vec![1];
    leb(usize::from(locals), &mut body);
    body.push(0x7e);
    body.extend([0x03, 0x40].repeat(loops));
    let mut local = 0;
    while body.len() + 6 * loops + 16 <= bytes {
        // local.get n; i64.const 1; i64.add; local.set n
        body.push(0x20);
        leb(local, &mut body);
        body.extend([0x42, 0x01, 0x7c, 0x21]);
        leb(local, &mut body);
        local = (local + 1) % usize::from(locals);
    }
    // Each loop goes round again while local 0 is non-zero.
    body.extend([0x20, 0x00, 0xa7, 0x0d, 0x00, 0x0b].repeat(loops));
    body.extend([0x20, 0x00, 0x0b]);
    let mut code = vec![functions];
    for _ in 0..functions {
        leb(body.len(), &mut code);
        code.extend(&body);
    }
    let funcs = [&[functions][..], &vec![0; usize::from(functions)]].concat();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    for (id, section) in [(1u8, vec![1, 0x60, 0, 1, 0x7e]), (3, funcs), (10, code)] {
        wasm.push(id);
        leb(section.len(), &mut wasm);
        wasm.extend(section);
    }
    wasm
}

/// The binary compiles policy modules in a child of itself under
/// `--max-compile-seconds` of CPU time: a module that needs minutes is
/// refused at start-up, exit 2, and the error names the module, the limit
/// and the flag that sets it.
#[test]
fn a_module_too_slow_to_compile_is_refused_naming_the_limit_and_the_flag() {
    let policies = scratch_dir("slow-compile");
    let bundle = policies.join("slow");
    std::fs::create_dir_all(&bundle).unwrap();
    let manifest = "name = \"slow\"\nversion = \"1.0.0\"\nregulator = \"nobody\"\narticles = []\n";
    std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(bundle.join(flowgate::MODULE_FILE), slow_to_compile(64, 512, 1_600, 16_000)).unwrap();
    let dir = policies.to_str().unwrap();
    let output =
        flowgate(&["check", "--policies", dir, "--allow-unsigned", "--max-compile-seconds", "1", "-"], USE.as_bytes());
    let stderr = text(&output.stderr);
    assert_eq!(status(&output), 2, "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert!(stderr.contains("policy.wasm"), "names the module: {stderr}");
    assert!(stderr.contains("1 s of CPU time"), "names the limit: {stderr}");
    assert!(stderr.contains("`--max-compile-seconds`"), "names the flag: {stderr}");

    let output = flowgate(&["check", "--max-compile-seconds", "0", "-"], USE.as_bytes());
    assert_eq!(status(&output), 2, "no limit of 0 s: {}", text(&output.stderr));
}
