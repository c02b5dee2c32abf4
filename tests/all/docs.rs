//! The author's pages stay complete: `docs/vocabulary.md` lists every word
//! the SDK declares, each in its own section, and `docs/manifest.md` every
//! key a manifest accepts.

use flowgate::sdk::{
    Action, Category, ConsentKind, ConsentState, Deidentification, DslClass, Effect, ExportMechanism, LawfulBasis,
    ObligationKind, Purpose, RecipientKind, Regime, Remedy, Sector,
};

use crate::repo_path;

/// The text of the section `## heading` of `page`.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page.find(&format!("\n## {heading}\n")).unwrap_or_else(|| panic!("no section `{heading}`"));
    let rest = &page[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |at| at + 3);
    &rest[..end]
}

fn words<T: std::fmt::Display>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}

#[test]
fn the_vocabulary_page_lists_every_word_in_its_section() {
    let page = std::fs::read_to_string(repo_path("docs/vocabulary.md")).unwrap();
    let vocabularies = [
        ("Regime", words(Regime::ALL)),
        ("Sector", words(Sector::ALL)),
        ("Action", words(Action::ALL)),
        ("Category", words(Category::ALL)),
        ("DSL class", words(DslClass::ALL)),
        ("De-identification", words(Deidentification::ALL)),
        ("Purpose", words(Purpose::ALL)),
        ("Lawful basis", words(LawfulBasis::ALL)),
        ("Consent state", words(ConsentState::ALL)),
        ("Consent kind", words(ConsentKind::ALL)),
        ("Recipient kind", words(RecipientKind::ALL)),
        ("Export mechanism", words(ExportMechanism::ALL)),
        ("Effect", words(Effect::ALL)),
        ("Obligation kind", words(ObligationKind::ALL)),
        ("Remedy", words(Remedy::ALL)),
    ];
    for (heading, words) in vocabularies {
        let text = section(&page, heading);
        let rows: Vec<&str> = text.lines().filter(|line| line.starts_with("| `")).collect();
        let listed: Vec<String> = rows.iter().map(|row| row.split('`').nth(1).unwrap().to_owned()).collect();
        assert_eq!(listed, words, "section `{heading}` must list every word, in declaration order");
        for row in rows {
            let meaning = row.rsplit('|').nth(1).unwrap().trim();
            assert!(meaning.len() > 3, "`{heading}`: a word without a meaning: {row}");
        }
    }
}

#[test]
fn the_manifest_page_lists_every_key() {
    let page = std::fs::read_to_string(repo_path("docs/manifest.md")).unwrap();
    let keys = [
        (
            "Top level",
            &[
                "name",
                "version",
                "regulator",
                "articles",
                "[applies_to]",
                "[rules]",
                "[limits]",
                "[config]",
                "[[test]]",
            ][..],
        ),
        (
            "`[applies_to]`: where the policy can apply",
            &["actions", "categories", "recipients", "regimes", "dsl_classes", "personal", "sensitive", "cross_border"],
        ),
        ("`[limits]`: the policy's own limits", &["deadline_ms", "memory_bytes", "table_elements"]),
        (
            "`[[test]]`: the policy's own test vectors",
            &["name", "record", "effect", "obligations", "remedies", "rules"],
        ),
    ];
    for (heading, keys) in keys {
        let text = section(&page, heading);
        let listed: Vec<&str> =
            text.lines().filter(|line| line.starts_with("| `")).map(|row| row.split('`').nth(1).unwrap()).collect();
        assert_eq!(listed, keys, "section `{heading}`");
    }
    // Every key the page documents is one the parser accepts, and no other:
    // a manifest using them all parses, and one more key is refused.
    let all = r#"name = "p"
version = "1.0.0"
regulator = "r"
articles = []
[applies_to]
actions = ["use"]
categories = ["minor"]
recipients = ["self"]
regimes = ["pipl"]
dsl_classes = ["general"]
personal = true
sensitive = true
cross_border = false
[rules]
r = "deny"
[limits]
deadline_ms = 5
memory_bytes = 65536
table_elements = 10
[config]
[[test]]
name = "t"
record = { id = "t", platform = { id = "p" }, action = "use", data = { categories = ["minor"] }, purpose = "service" }
effect = "deny"
obligations = []
remedies = ["obtain_guardian_consent"]
rules = ["r"]
"#;
    flowgate::Manifest::parse("all keys", all).unwrap();
    for (table, extra) in [("[applies_to]", "purposes = []"), ("[limits]", "fuel = 1"), ("[[test]]", "note = \"\"")] {
        let text = all.replace(&format!("{table}\n"), &format!("{table}\n{extra}\n"));
        assert!(flowgate::Manifest::parse("extra", &text).is_err(), "{table} {extra}");
    }
}
