//! The policy manifest (`manifest.toml`): who wrote the policy, what it
//! enforces, its configuration, its limits and its own test vectors.
//!
//! ```toml
//! name = "regulator-jv"
//! version = "1.0.0"
//! regulator = "Financial regulator"
//! articles = ["PIPL Art. 6", "PIPL Art. 51"]
//!
//! [applies_to]        # optional; elsewhere the host skips the policy
//! recipients = ["regulator_jv"]
//!
//! [rules]             # optional; what each rule does: reasons carry it as `outcome`
//! aggregate-k = "obligation"
//!
//! [limits]            # optional; each key overrides the host default
//! deadline_ms = 100
//! memory_bytes = 16_777_216
//!
//! [config]            # handed to the policy once, when an instance starts
//! min_k = 50
//! max_retention_days = 365
//!
//! [[test]]            # the policy's own answer for a record
//! name = "aggregated in groups too small"
//! record = { id = "jv-1", platform = { id = "p" }, action = "share", data = { categories = ["transaction"], deidentification = "aggregated", k = 5 }, purpose = "regulatory_reporting", recipient = { kind = "regulator_jv" } }
//! effect = "allow_with_obligations"
//! obligations = [{ kind = "aggregate", k = 50 }]
//! rules = ["aggregate-k"]
//! ```
//!
//! Unknown keys are errors, as in records: a misspelt limit must not be
//! silently ignored.

use serde::Deserialize;

use flowgate_sdk::{Effect, FlowRecord, Obligation, Remedy};

use crate::model::{AppliesTo, Expected, RuleOutcome, is_printable, with_suggestion};

use super::error::BundleError;

/// A parsed `manifest.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The policy's name, lower case with hyphens (`cross-border`).
    pub name: String,
    /// The policy's version (`1.0.0`).
    pub version: String,
    /// Who wrote and enforces it.
    pub regulator: String,
    /// The legal articles it enforces.
    pub articles: Vec<String>,
    /// Where the policy may apply; elsewhere the host skips it (see [`AppliesTo`]).
    #[serde(default)]
    pub applies_to: AppliesTo,
    /// Per-policy overrides of the host's limits.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// What each rule does when it fires (`deny`, `obligation` or `allow`),
    /// by rule name; decisions' reasons say it as `outcome`. Optional, per rule.
    #[serde(default)]
    pub rules: std::collections::BTreeMap<String, RuleOutcome>,
    /// The policy's configuration, handed to it as JSON when an instance starts.
    #[serde(default)]
    pub config: toml::Table,
    /// The policy's own test vectors.
    #[serde(default, rename = "test")]
    pub tests: Vec<TestVector>,
}

/// Limits a manifest may set for its own policy; unset ones take the host's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Deadline of one call into the policy, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Cap on the policy's linear memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Cap on the elements of the policy's tables.
    pub table_elements: Option<u64>,
}

/// One of a policy's own test vectors: a record and the answer the policy
/// itself must give (not the combined decision).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestVector {
    /// What the vector checks.
    pub name: String,
    /// The record.
    pub record: FlowRecord,
    /// The expected effect.
    pub effect: Effect,
    /// The expected obligations, sorted by kind.
    #[serde(default)]
    pub obligations: Vec<Obligation>,
    /// The expected remedies, sorted.
    #[serde(default)]
    pub remedies: Vec<Remedy>,
    /// The names of the rules expected to fire, in rule table order.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The line of the manifest where the vector's `[[test]]` starts (1-based;
    /// 0 when unknown, as for a vector written as an inline table).
    #[serde(skip)]
    pub line: usize,
}

/// The name the host gives its own reasons (`no-policy-applied`).
pub(crate) const RESERVED_NAME: &str = "flowgate";
/// The longest policy name or version.
const MAX_NAME_BYTES: usize = 64;
/// The longest regulator, article or vector name: each is shown to people.
const MAX_TEXT_BYTES: usize = 256;
/// The most articles one policy may cite.
const MAX_ARTICLES: usize = 64;

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// The 1-based line where `key` is set in the table `[table]` of a
/// manifest's `text`, or else the line of that table's header: where an
/// author looks for a value the policy or the host refused.
pub(crate) fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = "";
    let mut header = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.split(']').next()) {
            current = name.trim_start_matches('[').trim();
            if current == table {
                header = Some(index + 1);
            }
            continue;
        }
        let named = line.strip_prefix(key).or_else(|| line.strip_prefix(&format!("\"{key}\"")));
        if current == table && named.is_some_and(|rest| rest.trim_start().starts_with('=')) {
            return Some(index + 1);
        }
    }
    header
}

/// The 1-based lines holding a `[[test]]` header, in order.
fn test_header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            line.strip_prefix("[[").and_then(|rest| rest.split_once("]]")).is_some_and(|(name, after)| {
                name.trim() == "test" && (after.trim().is_empty() || after.trim_start().starts_with('#'))
            })
        })
        .map(|(index, _)| index + 1)
        .collect()
}

impl TestVector {
    /// Why no answer could ever meet this vector, if none could: an effect
    /// contradicted by the obligations, remedies or rules it lists beside it.
    fn contradiction(&self) -> Option<String> {
        let effect = self.effect;
        let kinds: Vec<_> = self.obligations.iter().map(|o| o.kind()).collect();
        if let Some(kind) = kinds.iter().enumerate().find_map(|(i, k)| kinds[..i].contains(k).then_some(k)) {
            return Some(format!(
                "lists two obligations of kind `{kind}`; an answer holds one per kind (the most protective)"
            ));
        }
        if let Some(rule) = self.rules.iter().enumerate().find_map(|(i, r)| self.rules[..i].contains(r).then_some(r)) {
            return Some(format!("lists rule `{rule}` twice; a rule fires once"));
        }
        match effect {
            Effect::NotApplicable if !(self.obligations.is_empty() && self.remedies.is_empty() && self.rules.is_empty()) => {
                Some("expects `not_applicable` but lists obligations, remedies or rules; a policy that does not apply fires nothing".into())
            }
            Effect::Allow if !self.obligations.is_empty() => Some(
                "expects `allow` but lists obligations; an answer with obligations is `allow_with_obligations`".into(),
            ),
            Effect::AllowWithObligations if self.obligations.is_empty() => {
                Some("expects `allow_with_obligations` but lists no `obligations`".into())
            }
            Effect::Deny if !self.obligations.is_empty() => {
                Some("expects `deny` but lists obligations; a deny carries none (they are for a flow that goes ahead)".into())
            }
            Effect::Allow | Effect::AllowWithObligations if !self.remedies.is_empty() => Some(format!(
                "expects `{effect}` but lists remedies; only a `deny` has remedies"
            )),
            _ => None,
        }
    }

    /// The answer this vector expects, for [`Expected::check`].
    pub fn expected(&self) -> Expected {
        Expected {
            effect: self.effect,
            obligations: self.obligations.clone(),
            remedies: self.remedies.clone(),
            rules: self.rules.clone(),
        }
    }
}

impl Manifest {
    /// Parses a manifest; `origin` names it in errors (a path, or any label).
    ///
    /// ```
    /// let manifest = flowgate::Manifest::parse("inline", r#"
    ///     name = "lawful-basis"
    ///     version = "1.0.0"
    ///     regulator = "Cyberspace Administration of China"
    ///     articles = ["PIPL Art. 13"]
    /// "#).unwrap();
    /// assert_eq!(manifest.name, "lawful-basis");
    ///
    /// let err = flowgate::Manifest::parse("inline", "name = 7").unwrap_err();
    /// assert!(format!("{:?}", err).contains("invalid type"));
    /// ```
    pub fn parse(origin: &str, text: &str) -> Result<Manifest, BundleError> {
        let mut manifest: Manifest = toml::from_str(text).map_err(|err| {
            let (line, column) = err.span().map_or((1, 1), |span| line_and_column(text, span.start));
            BundleError::Manifest { origin: origin.to_owned(), line, column, message: with_suggestion(err.message()) }
        })?;
        let lines = test_header_lines(text);
        if lines.len() == manifest.tests.len() {
            for (vector, line) in manifest.tests.iter_mut().zip(lines) {
                vector.line = line;
            }
        }
        manifest.check(origin)?;
        for vector in &manifest.tests {
            if let Some(problem) = vector.contradiction() {
                return Err(BundleError::Manifest {
                    origin: origin.to_owned(),
                    line: vector.line.max(1),
                    column: 1,
                    message: format!("test vector `{}` {problem}", vector.name),
                });
            }
        }
        Ok(manifest)
    }

    fn check(&self, origin: &str) -> Result<(), BundleError> {
        let bad = |field, problem: &str| BundleError::ManifestValue {
            origin: origin.to_owned(),
            field,
            problem: problem.to_owned(),
        };
        let valid_name = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name || self.name.len() > MAX_NAME_BYTES {
            return Err(bad("name", "must be lower-case letters, digits and hyphens, at most 64 of them"));
        }
        if self.name == RESERVED_NAME {
            return Err(bad("name", "`flowgate` is the host's own name, which no policy may take"));
        }
        let valid_version = !self.version.is_empty()
            && self.version.len() <= MAX_NAME_BYTES
            && self.version.bytes().all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b));
        if !valid_version {
            return Err(bad("version", "must be a version such as `1.0.0`"));
        }
        if self.regulator.len() > MAX_TEXT_BYTES || !is_printable(&self.regulator) {
            return Err(bad("regulator", "must be at most 256 bytes of printable text"));
        }
        if self.articles.len() > MAX_ARTICLES
            || self.articles.iter().any(|a| a.len() > MAX_TEXT_BYTES || !is_printable(a))
        {
            return Err(bad("articles", "must be at most 64 entries of at most 256 bytes of printable text"));
        }
        if self.tests.iter().any(|t| t.name.len() > MAX_TEXT_BYTES || !is_printable(&t.name)) {
            return Err(bad("test.name", "must be at most 256 bytes of printable text"));
        }
        if self.limits.deadline_ms == Some(0) {
            return Err(bad("limits.deadline_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// The configuration as the JSON the guest reads.
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.config).expect("a TOML table is valid JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name = \"p\"\nversion = \"1.0.0\"\nregulator = \"r\"\narticles = []\n";

    fn field_error(text: &str) -> &'static str {
        match Manifest::parse("m", text) {
            Err(BundleError::ManifestValue { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_manifest_has_empty_defaults() {
        let manifest = Manifest::parse("m", HEAD).unwrap();
        assert_eq!(manifest.applies_to, AppliesTo::default());
        assert_eq!(manifest.limits, LimitOverrides::default());
        assert!(manifest.tests.is_empty());
        assert_eq!(manifest.config_json(), "{}");
    }

    #[test]
    fn unknown_keys_are_errors_not_ignored() {
        for text in [format!("{HEAD}colour = 1"), format!("{HEAD}[limits]\ndeadline = 5")] {
            let err = Manifest::parse("m", &text).unwrap_err();
            assert!(
                matches!(&err, BundleError::Manifest { message, .. } if message.contains("unknown field")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn values_outside_their_range_name_the_field() {
        assert_eq!(field_error(&HEAD.replace("\"p\"", "\"Bad Name\"")), "name");
        assert_eq!(field_error(&HEAD.replace("\"p\"", "\"\"")), "name");
        assert_eq!(field_error(&HEAD.replace("1.0.0", "1 0")), "version");
        assert_eq!(field_error(&format!("{HEAD}[limits]\ndeadline_ms = 0")), "limits.deadline_ms");
        assert_eq!(field_error(&HEAD.replace("\"p\"", "\"flowgate\"")), "name", "the host's own name is reserved");
        assert_eq!(field_error(&HEAD.replace("1.0.0", "1.0\\u001b[2J")), "version");
    }

    #[test]
    fn parse_errors_say_where_without_quoting_the_file() {
        let text = format!("{HEAD}secret = \"hunter2\"\n");
        match Manifest::parse("m", &text).unwrap_err() {
            BundleError::Manifest { line, column, message, .. } => {
                assert_eq!((line, column), (5, 1));
                assert!(!message.contains("hunter2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let err = Manifest::parse("m", "name = \"第\"\nversion = 7").unwrap_err().to_string();
        assert_eq!(err, "`m` line 2, column 11: invalid type: integer `7`, expected a string");
    }

    const RECORD: &str = "record = { id = \"i\", platform = { id = \"p\" }, action = \"use\", data = { categories = [\"contact\"] }, purpose = \"service\" }\n";

    #[test]
    fn vectors_know_their_line() {
        let text = format!(
            "{HEAD}\n[[test]]\nname = \"a\"\n{RECORD}effect = \"allow\"\n\n  [[ test ]] # second\nname = \"b\"\n{RECORD}effect = \"allow\"\n"
        );
        let manifest = Manifest::parse("m", &text).unwrap();
        assert_eq!(manifest.tests.iter().map(|t| t.line).collect::<Vec<_>>(), [6, 11]);
    }

    #[test]
    fn contradictory_expectations_are_refused_with_their_line() {
        let cases = [
            (
                "effect = \"allow\"\nremedies = [\"obtain_consent\"]",
                "expects `allow` but lists remedies; only a `deny` has remedies",
            ),
            ("effect = \"allow\"\nobligations = [{ kind = \"anonymise\" }]", "expects `allow` but lists obligations"),
            ("effect = \"allow_with_obligations\"", "expects `allow_with_obligations` but lists no `obligations`"),
            ("effect = \"deny\"\nobligations = [{ kind = \"anonymise\" }]", "expects `deny` but lists obligations"),
            ("effect = \"not_applicable\"\nrules = [\"r\"]", "expects `not_applicable` but lists"),
            ("effect = \"deny\"\nrules = [\"r\", \"r\"]", "lists rule `r` twice"),
            (
                "effect = \"allow_with_obligations\"\nobligations = [{ kind = \"limit_retention\", days = 1 }, { kind = \"limit_retention\", days = 2 }]",
                "two obligations of kind `limit_retention`",
            ),
        ];
        for (expectation, wanted) in cases {
            let text = format!("{HEAD}\n[[test]]\nname = \"odd\"\n{RECORD}{expectation}\n");
            match Manifest::parse("m", &text) {
                Err(BundleError::Manifest { line, message, .. }) => {
                    assert_eq!(line, 6, "{message}");
                    assert!(message.starts_with("test vector `odd` "), "{message}");
                    assert!(message.contains(wanted), "{message}");
                }
                other => panic!("{expectation}: expected a refusal, got {other:?}"),
            }
        }
        let fine = format!(
            "{HEAD}\n[[test]]\nname = \"ok\"\n{RECORD}effect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"r\"]\n"
        );
        assert!(Manifest::parse("m", &fine).is_ok());
    }

    #[test]
    fn config_is_handed_over_as_json_and_vectors_state_their_expectation() {
        let text = format!(
            "{HEAD}[config]\nmin_k = 50\n[[test]]\nname = \"t\"\neffect = \"deny\"\nremedies = [\"obtain_consent\"]\nrules = [\"r\"]\n\
             record = {{ id = \"i\", platform = {{ id = \"p\" }}, action = \"use\", data = {{ categories = [\"contact\"] }}, purpose = \"service\" }}\n"
        );
        let manifest = Manifest::parse("m", &text).unwrap();
        assert_eq!(manifest.config_json(), r#"{"min_k":50}"#);
        let expected = manifest.tests[0].expected();
        assert_eq!(expected.effect, Effect::Deny);
        assert_eq!(expected.remedies, [Remedy::ObtainConsent]);
        assert_eq!(expected.rules, ["r"]);
    }
}
