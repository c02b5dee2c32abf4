//! Writing a policy: from `flowgate new` to a bundle loaded beside the
//! reference set, and each message an author meets on the way (issue 14).

use std::path::{Path, PathBuf};

use clap::Parser;

use flowgate::testing::check_vectors;
use flowgate::{Bundle, Hint, LoadError, VectorProblem};

use crate::{flowgate, reference_bundles, repo_path, scratch_dir};

/// One target directory for every crate these tests build, inside the
/// workspace's `target/`: the SDK is compiled for wasm32 once, not per test.
fn shared_target() -> PathBuf {
    repo_path("target/flowgate-authoring")
}

fn reference_manifest(name: &str) -> &'static str {
    flowgate_reference_set::manifest(name).unwrap()
}

fn reference_wasm(name: &str) -> Vec<u8> {
    reference_bundles().into_iter().find(|b| b.manifest.name == name).unwrap().wasm
}

/// The reference policy `name` with its manifest edited by `edit`.
fn edited(name: &str, edit: impl Fn(&str) -> String) -> Bundle {
    let manifest = edit(reference_manifest(name));
    assert_ne!(manifest, reference_manifest(name), "the edit must change the manifest");
    Bundle::from_bytes(name, &manifest, reference_wasm(name)).unwrap()
}

/// Writes a bundle directory `dir/name` and returns it.
fn write_bundle(dir: &Path, name: &str, manifest: &str, wasm: &[u8]) -> PathBuf {
    let bundle = dir.join(name);
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm).unwrap();
    bundle
}

fn mismatch(bundle: &Bundle) -> (String, Vec<Hint>) {
    match check_vectors(bundle).unwrap_err() {
        LoadError::VectorsFailed { failures, .. } => {
            assert_eq!(failures.len(), 1, "{failures:?}");
            match &failures[0].problem {
                VectorProblem::Mismatch { hints, .. } => (failures[0].to_string(), hints.clone()),
                other => panic!("expected a mismatch, got {other:?}"),
            }
        }
        other => panic!("expected failing vectors, got {other:?}"),
    }
}

#[test]
fn a_new_crate_builds_passes_its_vectors_and_loads_beside_the_reference_set() {
    // Outside the workspace, as a regulator's own repository would be.
    let home = scratch_dir("authoring-new");
    assert!(!home.starts_with(repo_path("")), "{}", home.display());
    let run = flowgate(&["new", "minors-data", "--dir", home.to_str().unwrap()], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let crate_dir = home.join("minors-data");
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(!cargo_toml.contains(".workspace"), "a standalone crate inherits nothing:\n{cargo_toml}");
    let sdk = repo_path("sdk").canonicalize().unwrap();
    assert!(cargo_toml.contains(&format!("flowgate-sdk = {{ path = \"{}\" }}", sdk.display())), "{cargo_toml}");
    assert!(cargo_toml.contains(r#"crate-type = ["cdylib", "rlib"]"#) && cargo_toml.contains("library = []"));

    let out = home.join("bundles");
    let (crate_arg, out_arg) = (crate_dir.to_str().unwrap(), out.to_str().unwrap());
    let target = shared_target();
    let run = flowgate(&["build", "--out", out_arg, "--target-dir", target.to_str().unwrap(), crate_arg], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("built minors-data 0.1.0"), "{}", run.stderr);
    assert!(!run.stderr.contains("unexpected `cfg` condition"), "{}", run.stderr);

    let bundle = out.join("minors-data");
    let run = flowgate(&["test", "-v", bundle.to_str().unwrap()], b"");
    assert_eq!((run.status, run.stderr.as_str()), (0, ""), "{}", run.stdout);
    assert!(run.stdout.contains("ok   minors-data 0.1.0: 2 vectors"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  ok   `a child's data without the guardian's consent` (manifest line 24)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  ok   `with the guardian's consent` (manifest line 31)"), "{}", run.stdout);
    // The generated code points at the contract's pages where they are.
    let lib_rs = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    let vocabulary = repo_path("docs").canonicalize().unwrap().join("vocabulary.md");
    assert!(lib_rs.contains(&format!("`{}`", vocabulary.display())), "{lib_rs}");

    // Signed, then rebuilt from a changed manifest: `build` says the old
    // signature no longer covers the bundle, and `verify` says how to sign again.
    let key_dir = home.join("keys");
    assert_eq!(flowgate(&["key", "new", "cac-test", "--out", key_dir.to_str().unwrap()], b"").status, 0);
    let key = key_dir.join("cac-test.key");
    let signed = flowgate(&["sign", "--key", key.to_str().unwrap(), bundle.to_str().unwrap()], b"");
    assert!(signed.stdout.contains("(1 signature)"), "{}", signed.stdout);
    let manifest_path = crate_dir.join("manifest.toml");
    let edited = std::fs::read_to_string(&manifest_path).unwrap() + "\n# edited after signing\n";
    std::fs::write(&manifest_path, edited).unwrap();
    let rebuilt = flowgate(&["build", "--out", out_arg, "--target-dir", target.to_str().unwrap(), crate_arg], b"");
    assert_eq!(rebuilt.status, 0, "{}", rebuilt.stderr);
    let note = format!("note: `{}` holds signatures of an earlier build", bundle.join("signatures.toml").display());
    assert!(rebuilt.stderr.contains(&note), "{}", rebuilt.stderr);
    assert!(rebuilt.stderr.contains(&format!("sign it again: `flowgate sign --key ID.key {}`", bundle.display())));
    let public = std::fs::read_to_string(key_dir.join("cac-test.pub")).unwrap();
    let trust = home.join("trust.toml");
    let grant = "[[grant]]\npolicies = [\"*\"]\nkeys = [\"cac-test\"]\n";
    let key_entry = format!("[[key]]\nid = \"cac-test\"\npublic = \"{}\"\nholder = \"CAC\"\n", public.trim());
    std::fs::write(&trust, format!("{key_entry}{grant}")).unwrap();
    let verified = flowgate(&["verify", "--trust", trust.to_str().unwrap(), bundle.to_str().unwrap()], b"");
    assert_eq!(verified.status, 1, "{}", verified.stdout);
    assert!(
        verified.stdout.contains("sign it again with `flowgate sign --key cac-test.key DIR`"),
        "{}",
        verified.stdout
    );
    let resigned = flowgate(&["sign", "--key", key.to_str().unwrap(), bundle.to_str().unwrap()], b"");
    assert_eq!(resigned.status, 0, "{}", resigned.stderr);
    let verified = flowgate(&["verify", "--trust", trust.to_str().unwrap(), bundle.to_str().unwrap()], b"");
    assert_eq!(verified.status, 0, "{}", verified.stdout);

    // Beside the ten reference policies.
    for reference in reference_bundles() {
        let name = reference.manifest.name.clone();
        write_bundle(&out, &name, reference_manifest(&name), &reference.wasm);
    }
    let policies = flowgate(&["policies", "--policies", out_arg, "--allow-unsigned"], b"");
    assert_eq!(policies.status, 0, "{}", policies.stderr);
    assert_eq!(policies.stdout.lines().count(), 1 + 11, "{}", policies.stdout);
    assert!(policies.stdout.contains("\nminors-data 0.1.0 sha256 "), "{}", policies.stdout);
    let records = concat!(
        r#"{"id":"child","platform":{"id":"p"},"action":"use","data":{"categories":["minor"]},"purpose":"service","lawful_basis":"consent","consent":{"state":"given","kind":"separate"},"notice_given":true,"impact_assessment":true}"#,
        "\n",
        r#"{"id":"adult","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#,
        "\n",
    );
    let run = flowgate(&["check", "--policies", out_arg, "--allow-unsigned", "--provenance", "-"], records.as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let decisions: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let applied = |decision: &serde_json::Value| -> Vec<String> {
        decision["provenance"]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(decisions[0]["effect"], "deny", "{}", decisions[0]);
    let reasons = decisions[0]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r["policy"] == "minors-data" && r["rule"] == "guardian-consent"),
        "{}",
        decisions[0]
    );
    assert!(applied(&decisions[0]).contains(&"minors-data".to_owned()));
    // `[applies_to] categories = ["minor"]`: an adult's contact data never reaches it.
    assert!(!applied(&decisions[1]).contains(&"minors-data".to_owned()), "{}", decisions[1]);
    assert!(applied(&decisions[1]).contains(&"lawful-basis".to_owned()), "{}", decisions[1]);
}

#[test]
fn a_crate_without_export_policy_is_told_to_call_it() {
    let home = scratch_dir("authoring-no-export");
    let run = flowgate(&["new", "forgetful", "--dir", home.to_str().unwrap()], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let lib = home.join("forgetful/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let without = source.replace("flowgate_sdk::export_policy!(Forgetful);", "");
    assert_ne!(without, source);
    std::fs::write(&lib, without).unwrap();
    let out = home.join("bundles");
    let target = shared_target();
    let crate_dir = home.join("forgetful");
    let args = [
        "build",
        "--out",
        out.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
        crate_dir.to_str().unwrap(),
    ];
    let run = flowgate(&args, b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("exports no policy"), "{}", run.stderr);
    assert!(run.stderr.contains("flowgate_sdk::export_policy!(YourPolicy);"), "{}", run.stderr);
    assert!(!run.stderr.contains("flowgate_abi_version"), "{}", run.stderr);
    // The message names the module cargo wrote, a file that exists.
    let named = run.stderr.split('`').nth(1).unwrap();
    assert!(named.ends_with("forgetful.wasm") && Path::new(named).is_file(), "{}", run.stderr);
    assert!(!out.join("forgetful").exists());
}

#[test]
fn a_mismatch_is_told_in_the_manifests_words_with_labels_and_line() {
    let bundle = edited("purpose-minimisation", |m| {
        m.replacen(
            r#"obligations = [{ kind = "limit_retention", days = 365 }]"#,
            r#"obligations = [{ kind = "limit_retention", days = 180 }]"#,
            1,
        )
    });
    let (text, hints) = mismatch(&bundle);
    assert!(hints.is_empty(), "{hints:?}");
    let line = reference_manifest("purpose-minimisation")
        .lines()
        .position(|l| l == "name = \"retention above the purpose's maximum is capped\"")
        .unwrap(); // the `[[test]]` header is the line above; lines count from 1
    assert_eq!(
        text,
        format!(
            "`retention above the purpose's maximum is capped` (manifest line {line}): the policy's answer differs from the vector\n    \
             effect       allow_with_obligations (as expected)\n    \
             obligations  expected [{{ kind = \"limit_retention\", days = 180 }}], got [{{ kind = \"limit_retention\", days = 365 }}]"
        )
    );
    assert!(!text.contains("LimitRetention"), "{text}");

    let bundle = edited("lawful-basis", |m| {
        m.replace("effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]", "effect = \"allow\"")
    });
    let (text, _) = mismatch(&bundle);
    assert!(text.contains("effect       expected `allow`, got `deny`"), "{text}");
    assert!(text.contains(r#"remedies     expected [], got ["obtain_consent"]"#), "{text}");
    assert!(text.contains(r#"rules        expected [], got ["no-basis"]"#), "{text}");
}

#[test]
fn a_rule_not_declared_is_named_with_the_rules_that_are() {
    let bundle =
        edited("cross-border", |m| m.replace(r#"rules = ["foreign-authority"]"#, r#"rules = ["foreign-authorities"]"#));
    let (text, hints) = mismatch(&bundle);
    assert!(
        matches!(&hints[..], [Hint::UndeclaredRule { rule, declared }] if rule == "foreign-authorities" && declared.contains(&"foreign-authority".to_owned())),
        "{hints:?}"
    );
    assert!(text.contains("hint: rule `foreign-authorities` is not declared in the policy's `rules!` table"), "{text}");
}

#[test]
fn rules_listed_out_of_table_order_are_told_the_order() {
    let bundle = edited("cross-border", |m| {
        m.replace(
            r#"rules = ["export-assessment", "export-separate-consent"]"#,
            r#"rules = ["export-separate-consent", "export-assessment"]"#,
        )
    });
    let (text, hints) = mismatch(&bundle);
    assert!(matches!(&hints[..], [Hint::RuleOrder { .. }]), "{hints:?}");
    assert!(
        text.contains(r#"list them in rule table order: rules = ["export-assessment", "export-separate-consent"]"#),
        "{text}"
    );
}

#[test]
fn a_vector_the_scope_skips_says_so() {
    // The GDPR vector, outside `regimes = ["pipl"]`, now expecting a deny
    // that the host would never ask the policy for.
    let bundle = edited("cross-border", |m| {
        m.replace(
            "destination = \"SG\" }\neffect = \"not_applicable\"",
            "destination = \"SG\" }\neffect = \"deny\"\nrules = [\"foreign-authority\"]",
        )
    });
    let (text, hints) = mismatch(&bundle);
    assert!(hints.contains(&Hint::ScopeSkips), "{hints:?}");
    assert!(text.contains("outside the manifest's [applies_to], so the host never calls the policy for it"), "{text}");
}

#[test]
fn contradictory_expectations_are_refused_before_anything_runs() {
    let manifest = reference_manifest("lawful-basis").replace(
        "effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]",
        "effect = \"allow\"\nremedies = [\"obtain_consent\"]",
    );
    let err = Bundle::from_bytes("lb", &manifest, reference_wasm("lawful-basis")).unwrap_err().to_string();
    let line = manifest.lines().position(|l| l == "name = \"no basis at all\"").unwrap();
    assert_eq!(
        err,
        format!(
            "`lb/manifest.toml` line {line}, column 1: test vector `no basis at all` expects `allow` but lists remedies; only a `deny` has remedies"
        )
    );
}

#[test]
fn test_reports_on_one_stream_lists_with_v_and_names_unfired_rules() {
    let dir = scratch_dir("authoring-test-output");
    // One vector fewer: `deletion` no longer fires in any.
    let manifest = reference_manifest("lawful-basis");
    let start = manifest.find("[[test]]\nname = \"erasure is always lawful").unwrap();
    let end = start + manifest[start + 1..].find("[[test]]").unwrap() + 1;
    let fewer = format!("{}{}", &manifest[..start], &manifest[end..]);
    let bundle = write_bundle(&dir, "lawful-basis", &fewer, &reference_wasm("lawful-basis"));
    let run = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert_eq!((run.status, run.stderr.as_str()), (0, ""), "{}", run.stdout);
    assert!(run.stdout.contains("note: no vector makes these rules fire: `deletion`"), "{}", run.stdout);
    assert!(!run.stdout.contains("  ok   `"), "only -v lists passing vectors: {}", run.stdout);
    let verbose = flowgate(&["test", "-v", bundle.to_str().unwrap()], b"");
    assert_eq!(verbose.stdout.matches("  ok   `").count(), fewer.matches("[[test]]").count(), "{}", verbose.stdout);

    // No vectors at all.
    let none = &manifest[..manifest.find("[[test]]").unwrap()];
    let bundle = write_bundle(&dir.join("none"), "lawful-basis", none, &reference_wasm("lawful-basis"));
    let run = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert!(run.stdout.contains("note: the manifest has no [[test]] vectors"), "{}", run.stdout);

    // A failure: verdict, vector and reason together on stdout, in order.
    let failing = manifest
        .replace("effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]", "effect = \"allow\"");
    let bundle = write_bundle(&dir.join("failing"), "lawful-basis", &failing, &reference_wasm("lawful-basis"));
    let run = flowgate(&["test", bundle.to_str().unwrap()], b"");
    assert_eq!((run.status, run.stderr.as_str()), (1, ""), "{}", run.stdout);
    let fail = run.stdout.find("FAIL lawful-basis 1.0.0: 1 of 7 vectors fail").expect(&run.stdout);
    let vector = run.stdout.find("  FAIL `no basis at all` (manifest line ").expect(&run.stdout);
    let reason = run.stdout.find("effect       expected `allow`, got `deny`").expect(&run.stdout);
    assert!(fail < vector && vector < reason, "{}", run.stdout);
}

#[test]
fn policies_pointing_at_a_bundle_or_at_nothing_is_an_error_that_says_so() {
    let dir = scratch_dir("authoring-policies-dir");
    let bundle =
        write_bundle(&dir, "lawful-basis", reference_manifest("lawful-basis"), &reference_wasm("lawful-basis"));
    let run = flowgate(&["check", "--policies", bundle.to_str().unwrap(), "--allow-unsigned", "-"], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a policy bundle itself, not a directory of bundles"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("`--policies {}`", dir.display())), "it names the parent: {}", run.stderr);

    let empty = scratch_dir("authoring-policies-empty");
    std::fs::create_dir_all(empty.join("not-a-bundle")).unwrap();
    let run = flowgate(&["policies", "--policies", empty.to_str().unwrap(), "--allow-unsigned"], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("holds no policy bundles"), "{}", run.stderr);

    // The parent works.
    let run = flowgate(&["policies", "--policies", dir.to_str().unwrap(), "--allow-unsigned"], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let home = scratch_dir("authoring-new-refusals");
    let run = flowgate(&["new", "Minors_Data", "--dir", home.to_str().unwrap()], b"");
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("`Minors_Data` cannot name a policy"), "{}", run.stderr);
    std::fs::create_dir_all(home.join("taken")).unwrap();
    let run = flowgate(&["new", "taken", "--dir", home.to_str().unwrap()], b"");
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
}

#[test]
fn the_sdk_runs_a_manifests_vectors_natively_and_explains_failures() {
    type LawfulBasis = lawful_basis::LawfulBasisPolicy;
    let manifest = reference_manifest("lawful-basis");
    assert_eq!(flowgate::sdk::vectors::check::<LawfulBasis>(manifest).unwrap(), manifest.matches("[[test]]").count());

    let failing = manifest.replace(
        "effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"no-basis\"]",
        "effect = \"allow\"\nrules = [\"no-bases\"]",
    );
    let line = failing.lines().position(|l| l == "name = \"no basis at all\"").unwrap();
    let err = flowgate::sdk::vectors::check::<LawfulBasis>(&failing).unwrap_err().to_string();
    assert!(err.starts_with("1 of 7 vectors fail:\n"), "{err}");
    assert!(err.contains(&format!("`no basis at all` (manifest line {line}): natively, the answer differs")), "{err}");
    assert!(err.contains("effect       expected `allow`, got `deny`"), "{err}");
    assert!(err.contains(r#"remedies     expected [], got ["obtain_consent"]"#), "{err}");
    assert!(err.contains(r#"rules        expected ["no-bases"], got ["no-basis"]"#), "{err}");
    assert!(err.contains("hint: rule `no-bases` is not declared"), "{err}");

    let misconfigured = manifest.replace("[config]", "[config]\nsurplus = 1");
    if misconfigured != manifest {
        let err = flowgate::sdk::vectors::check::<LawfulBasis>(&misconfigured).unwrap_err().to_string();
        assert!(err.contains("[config]") && err.contains("surplus"), "{err}");
    }
}

#[test]
fn check_explain_says_what_every_policy_did() {
    let record = br#"{"id":"child","platform":{"id":"p"},"action":"use","data":{"categories":["minor"]},"purpose":"service","lawful_basis":"consent","consent":{"state":"given","kind":"separate"},"notice_given":true,"impact_assessment":true}"#;
    let plain = flowgate(&["check", "-"], record);
    let run = flowgate(&["check", "--explain", "-"], record);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut decision: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let explain = decision.as_object_mut().unwrap().remove("explain").expect("an explain array");
    assert_eq!(decision, serde_json::from_str::<serde_json::Value>(plain.stdout.trim()).unwrap(), "same decision");
    let verdicts = explain.as_array().unwrap();
    let names: Vec<&str> = verdicts.iter().map(|v| v["policy"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!((names.len(), &names), (10, &sorted), "every policy, in name order");
    let of = |name: &str| verdicts.iter().find(|v| v["policy"] == name).unwrap();
    assert_eq!(of("cross-border")["verdict"], "skipped_by_scope", "{explain}");
    assert_eq!(of("sensitive-consent")["verdict"], "answered");
    assert_eq!(of("sensitive-consent")["effect"], "deny");
    assert_eq!(of("sensitive-consent")["rules"], serde_json::json!(["guardian-consent"]));
    assert_eq!(of("sensitive-consent")["remedies"], serde_json::json!(["obtain_guardian_consent"]));
    assert_eq!(of("lawful-basis")["effect"], "allow", "{explain}");
}

#[test]
fn policies_shows_rules_of_different_policies_that_fire_together() {
    let run = flowgate(&["policies", "--overlaps"], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Guardian consent: `sensitive-consent` and a new policy would both ask
    // for it; among the reference set, impact assessments overlap.
    assert!(
        run.stdout.lines().any(|line| line.starts_with("overlap: remedy `conduct_impact_assessment` from ")
            && line.contains("sensitive-consent [")
            && line.contains("third-party-provision [provision-assessment")),
        "{}",
        run.stdout
    );
    let plain = flowgate(&["policies"], b"");
    assert!(!plain.stdout.contains("overlap"), "only when asked: {}", plain.stdout);
}

#[test]
fn each_reason_says_what_its_rule_did() {
    // Too many categories for personalised ads, and kept too long: a deny
    // that also carries the reason of an obligation rule.
    let record = br#"{"id":"ads","platform":{"id":"p"},"action":"use","data":{"categories":["location","device_id"]},"purpose":"personalised_ads","lawful_basis":"consent","consent":{"state":"given"},"retention_days":400}"#;
    let run = flowgate(&["check", "-"], record);
    let decision: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(decision["effect"], "deny", "{decision}");
    let outcome = |policy: &str, rule: &str| {
        let reasons = decision["reasons"].as_array().unwrap();
        let reason = reasons.iter().find(|r| r["policy"] == policy && r["rule"] == rule);
        reason.unwrap_or_else(|| panic!("no `{rule}` in {decision}"))["outcome"].clone()
    };
    assert_eq!(outcome("purpose-minimisation", "excess-categories"), "deny");
    assert_eq!(outcome("purpose-minimisation", "retention-cap"), "obligation");

    // A declaration naming a rule the table lacks is refused at load,
    // naming the manifest, the line, and the rule meant.
    let manifest = reference_manifest("lawful-basis").replace("[rules]\n", "[rules]\nno-bassis = \"deny\"\n");
    let line = manifest.lines().position(|l| l.starts_with("no-bassis")).unwrap() + 1;
    let bundle = Bundle::from_bytes("lawful-basis", &manifest, reference_wasm("lawful-basis")).unwrap();
    let err = flowgate::Host::builder().bundle(bundle).build().expect_err("refused").to_string();
    assert!(err.contains("[rules] declares what `no-bassis` does, but the rule table has no such rule"), "{err}");
    assert!(err.starts_with(&format!("`lawful-basis/manifest.toml` line {line}: ")), "{err}");
    assert!(err.ends_with("; did you mean `no-basis`?"), "{err}");
}

#[test]
fn a_refused_configuration_names_the_manifest_line_and_the_word_meant() {
    // One purpose misspelt in `[config]`: the policy's own parser refuses it.
    let manifest =
        reference_manifest("automated-decisions").replacen("\"personalised_ads\"]", "\"personalised_adds\"]", 1);
    let line = manifest.lines().position(|l| l.contains("personalised_adds")).unwrap() + 1;
    let bundle =
        Bundle::from_bytes("bundles/automated-decisions", &manifest, reference_wasm("automated-decisions")).unwrap();
    let err = flowgate::Host::builder().bundle(bundle).build().expect_err("refused").to_string();
    let expected = format!(
        "`bundles/automated-decisions/manifest.toml` line {line}: policy `automated-decisions` rejects its configuration: \
         `scope_purposes[1]`: unknown variant `personalised_adds`"
    );
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.ends_with("; did you mean `personalised_ads`?"), "{err}");
    // Where in the JSON the host handed over the policy failed means nothing to the author.
    assert!(!err.contains("column"), "{err}");
}

#[test]
fn build_checks_the_manifest_before_compiling_and_names_the_word_meant() {
    let home = scratch_dir("authoring-early-manifest");
    let crate_dir = home.join("minors");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    // A crate cargo could not build at all: had it been compiled first, the
    // error would be cargo's, after a while, not the manifest's.
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"minors\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[dependencies]\nflowgate-sdk = { path = \"/nonexistent\" }\n",
    )
    .unwrap();
    let manifest = concat!(
        "name = \"minors\"\nversion = \"0.1.0\"\nregulator = \"CAC\"\narticles = []\n\n",
        "[[test]]\nname = \"shared with a third party\"\n",
        "record = { id = \"m\", platform = { id = \"p\" }, action = \"share\", data = { categories = [\"minor\"] }, purpose = \"service\", recipient = { kind = \"thirdparty\" } }\n",
        "effect = \"deny\"\n",
    );
    std::fs::write(crate_dir.join("manifest.toml"), manifest).unwrap();
    let run = flowgate(&["build", "--out", home.join("bundles").to_str().unwrap(), crate_dir.to_str().unwrap()], b"");
    assert_eq!(run.status, 2, "{}", run.stderr);
    let path = crate_dir.join("manifest.toml");
    assert!(run.stderr.contains(&format!("`{}` line 8, column ", path.display())), "{}", run.stderr);
    assert!(run.stderr.contains("unknown variant `thirdparty`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `third_party`?"), "{}", run.stderr);
    assert!(!run.stderr.contains("Compiling") && !run.stderr.contains("cargo"), "nothing was built: {}", run.stderr);
}

#[test]
fn the_reference_bundles_are_written_out_unsigned_to_load_beside_ones_own() {
    let home = scratch_dir("authoring-reference");
    let out = home.join("bundles");
    let run = flowgate(&["reference", "--out", out.to_str().unwrap()], b"");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("wrote 10 reference bundles, unsigned"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-unsigned") && run.stderr.contains("flowgate sign --key"), "{}", run.stderr);
    // Exactly the policy set the binary embeds.
    let written = flowgate(&["policies", "--policies", out.to_str().unwrap(), "--allow-unsigned"], b"");
    let embedded = flowgate(&["policies"], b"");
    assert_eq!(written.status, 0, "{}", written.stderr);
    assert_eq!(written.stdout.lines().next(), embedded.stdout.lines().next(), "the same policy set id");
    // What is there is never written over.
    let again = flowgate(&["reference", "--out", out.to_str().unwrap()], b"");
    assert_eq!(again.status, 2);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}

#[test]
fn serve_accepts_watch_and_says_it_always_watches() {
    let cli = flowgate_cli::Cli::try_parse_from(["flowgate", "serve", "--watch", "--listen", "127.0.0.1:0"]);
    let cli = cli.expect("`serve --watch` is accepted");
    let stop = flowgate_cli::serve::Stop::new();
    stop.trigger();
    let mut stderr = Vec::new();
    let status = flowgate_cli::run_until(cli, &b""[..], Vec::new(), &mut stderr, false, stop);
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("`serve` always watches its policies directory"), "{stderr}");
}
