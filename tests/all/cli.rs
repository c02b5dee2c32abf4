//! The `flowgate` command: output order, invalid lines, exit status.

use flowgate::sdk::FlowRecord;

use crate::{flowgate, native_reference, repo_path, scratch_dir};

#[test]
fn invalid_lines_are_reported_and_the_rest_evaluated() {
    let input = concat!(
        r#"{"id":"a","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#,
        "\n",
        "this is not json\n",
        "\n",
        r#"{"id":"b","platform":{"id":"p"},"action":"sell","data":{"categories":["contact"]},"purpose":"service"}"#,
        "\n",
        r#"{"id":"c","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
    );
    let run = flowgate(&["check", "-"], input.as_bytes());
    assert_eq!(run.status, 1);
    let ids: Vec<String> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert!(run.stderr.contains("line 2: a record is a JSON object"), "{}", run.stderr);
    assert!(run.stderr.contains("line 4: `action`: unknown variant `sell`"), "{}", run.stderr);
    assert!(run.stderr.contains("2 records"), "{}", run.stderr);
    assert!(run.stderr.contains("2 invalid lines"), "{}", run.stderr);
}

/// The effect of each flow of `examples/flows.jsonl`, in order, as the
/// README describes them (credit data reported, sent to lenders or through
/// a bureau, trajectories exported, withdrawn consent, deletions...).
#[rustfmt::skip]
const EXAMPLE_EFFECTS: [(&str, &str); 33] = [
    ("pay-001", OBLIGE), ("pay-002", OBLIGE), ("pay-003", DENY), ("pay-004", DENY), ("pay-005", DENY),
    ("pay-006", OBLIGE), ("pay-007", OBLIGE), ("pay-008", DENY), ("pay-009", DENY), ("pay-010", OBLIGE),
    ("ride-001", DENY), ("ride-002", OBLIGE), ("ride-003", DENY), ("ride-004", OBLIGE), ("ride-005", DENY),
    ("ride-006", OBLIGE),
    ("shop-001", ALLOW), ("shop-002", OBLIGE), ("shop-003", OBLIGE), ("shop-004", DENY), ("shop-005", DENY),
    ("shop-006", DENY), ("shop-007", OBLIGE),
    ("food-001", DENY), ("food-002", OBLIGE), ("food-003", OBLIGE), ("food-004", DENY),
    ("consent-001", DENY), ("consent-002", DENY), ("consent-003", ALLOW),
    ("erase-001", ALLOW), ("erase-002", ALLOW),
    ("stats-001", "not_applicable"),
];
const ALLOW: &str = "allow";
const OBLIGE: &str = "allow_with_obligations";
const DENY: &str = "deny";

#[test]
fn the_examples_decide_as_the_native_policies_do() {
    let path = repo_path("examples/flows.jsonl");
    let run = flowgate(&["check", path.to_str().unwrap()], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let flows: Vec<FlowRecord> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| FlowRecord::from_json(line.as_bytes()).unwrap())
        .collect();
    let decisions: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(decisions.len(), flows.len());
    // The same policies compiled natively and combined the same way: a
    // decision the sandbox got wrong (a fault-deny, a lost obligation)
    // differs from theirs.
    let natives = native_reference();
    for (flow, decision) in flows.iter().zip(&decisions) {
        assert_eq!(*decision, natives.decide(flow).to_json(), "{}", flow.to_json());
        assert!(!decision.contains("policy-fault"), "{decision}");
    }
    let effects: Vec<(String, String)> = decisions
        .iter()
        .map(|line| {
            let decision: serde_json::Value = serde_json::from_str(line).unwrap();
            (decision["id"].as_str().unwrap().to_owned(), decision["effect"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected: Vec<(String, String)> =
        EXAMPLE_EFFECTS.iter().map(|(id, effect)| (id.to_string(), effect.to_string())).collect();
    assert_eq!(effects, expected);
}

#[test]
fn order_is_kept_across_chunks_and_threads() {
    let flows = flowgate_reference_set::sample::flows(21, 20_000);
    let input: String = flows.iter().map(|flow| flow.to_json() + "\n").collect();
    let run = flowgate(&["check", "-"], input.as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let ids: Vec<String> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = flows.iter().map(|flow| flow.id.clone()).collect();
    assert_eq!(ids, expected);
}

#[test]
fn usage_and_loading_errors_exit_with_2() {
    assert_eq!(flowgate(&["check"], b"").status, 2);
    assert_eq!(flowgate(&["check", "/no/such/file.jsonl"], b"").status, 2);
    let run = flowgate(&["check", "--policies", "/no/such/dir", "-"], b"");
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("/no/such/dir"), "{}", run.stderr);
}

#[test]
fn test_command_runs_the_reference_vectors() {
    let run = flowgate(&["test"], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("ok   cross-border 1.0.0"), "{}", run.stdout);
    assert!(run.stdout.contains("10 passed, 0 failed"), "{}", run.stdout);
}

#[test]
fn build_makes_a_tested_bundle_that_test_and_check_accept() {
    let out = scratch_dir("cli-build-out");
    let target = scratch_dir("cli-build-target");
    let crate_dir = repo_path("policies/regulator-jv");
    // As `flowgate build policies/*` would: reference-set has no manifest,
    // and is skipped with a note rather than stopping the build.
    let helper = repo_path("policies/reference-set");
    let args = [
        "build",
        "--out",
        out.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
        helper.to_str().unwrap(),
        crate_dir.to_str().unwrap(),
    ];
    let run = flowgate(&args, b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("note: skipping"), "{}", run.stderr);
    assert!(run.stderr.contains("reference-set`: it has no manifest.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("built regulator-jv 1.0.0"), "{}", run.stderr);
    let bundle = out.join("regulator-jv");
    let run = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("ok   regulator-jv 1.0.0: 7 vectors"), "{}", run.stdout);
    let record = br#"{"id":"jv","platform":{"id":"taobao"},"action":"share","data":{"categories":["transaction"],"deidentification":"aggregated","k":5},"purpose":"statistics","recipient":{"kind":"regulator_jv"}}"#;
    let run = flowgate(&["check", "--policies", out.to_str().unwrap(), "--allow-unsigned", "-"], record);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains(r#""obligations":[{"kind":"aggregate","k":50}]"#), "{}", run.stdout);
}

#[test]
fn test_reports_failing_vectors_with_status_1() {
    let dir = scratch_dir("cli-test-failing");
    let bundle = dir.join("lawful-basis");
    std::fs::create_dir_all(&bundle).unwrap();
    let manifest = flowgate_reference_set::manifest("lawful-basis")
        .unwrap()
        .replace("effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]", "effect = \"allow\"");
    std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    let wasm = flowgate_reference_set::bundles().find(|(n, _, _)| *n == "lawful-basis").unwrap().2;
    std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm).unwrap();
    let run = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert_eq!(run.status, 1, "{}", run.stdout);
    assert!(run.stdout.contains("FAIL lawful-basis 1.0.0"), "{}", run.stdout);
    assert!(run.stdout.contains("`no basis at all` (manifest line "), "{}", run.stdout);
    assert!(run.stdout.contains("effect       expected `allow`, got `deny`"), "{}", run.stdout);
}
