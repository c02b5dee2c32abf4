//! Hostile records: generated and mutated JSON lines (wrong types, missing
//! fields, unknown fields and words, duplicated keys, numbers out of range,
//! bad coverage, deep nesting, long strings, invalid UTF-8, cut lines)
//! through the library and the CLI. Each mutation is the only thing wrong
//! with its record, so the error it gives is known: the field it names and
//! what it says. The rest of a file is still evaluated; nothing panics.

use flowgate::sdk::FlowRecord;
use flowgate_reference_set::sample::{self, Rng};
use serde_json::{Value, json};

use crate::flowgate;

/// A valid record made invalid in one way, and the error that must name it.
#[derive(Debug)]
struct Mutant {
    /// Which kind of mutation.
    kind: &'static str,
    line: Vec<u8>,
    /// The field the error must name (`.` for the record itself).
    field: String,
    /// What the error message must start with.
    message: String,
}

/// The kinds of mutation, one per way a line can be wrong.
const KINDS: [&str; 13] = [
    "missing field",
    "wrong type",
    "unknown field",
    "duplicate field",
    "number out of range",
    "coverage out of range",
    "deep nesting",
    "long string",
    "invalid utf-8",
    "cut short",
    "unknown word",
    "bad category",
    "bad destination",
];

const REQUIRED: [&str; 5] = ["id", "platform", "action", "data", "purpose"];
/// Fields holding a word of the vocabulary, with where they sit.
const WORDS: [(&str, &str); 8] = [
    ("", "action"),
    ("", "purpose"),
    ("", "lawful_basis"),
    ("", "regime"),
    ("", "export_mechanism"),
    ("platform", "sector"),
    ("consent", "state"),
    ("recipient", "kind"),
];
/// The record's own fields that hold a word of the vocabulary.
const WORD_FIELDS: [&str; 6] = ["regime", "action", "purpose", "original_purpose", "lawful_basis", "export_mechanism"];
/// The bounded strings, with where they sit.
const STRINGS: [(&str, &str); 4] = [("", "id"), ("platform", "id"), ("recipient", "id"), ("recipient", "licence")];

/// The dotted path serde reports for `key` under `parent`.
fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// The object `parent` (`""` for the record) inside `record`.
fn object<'a>(record: &'a mut Value, parent: &str) -> &'a mut serde_json::Map<String, Value> {
    let object = if parent.is_empty() { record } else { &mut record[parent] };
    object.as_object_mut().unwrap()
}

/// A JSON value of another type than `value`, and how serde names its type.
fn wrong_type(value: &Value) -> (Value, &'static str) {
    match value {
        Value::String(_) => (json!(7), "invalid type: integer `7`"),
        Value::Bool(_) => (json!("yes"), "invalid type: string \"yes\""),
        Value::Number(_) => (json!("7"), "invalid type: string \"7\""),
        Value::Object(_) => (json!([1, 2, 3]), "invalid type: sequence"),
        other => panic!("the canonical form has no {other}"),
    }
}

/// `json` with the value of the one key `"key":` replaced by the text `value`
/// (for numbers JSON values cannot hold: too large, `NaN`, `1e400`).
fn with_number(json: &str, key: &str, value: &str) -> String {
    let key = format!("\"{key}\":");
    assert_eq!(json.matches(&key).count(), 1, "{key} in {json}");
    let start = json.find(&key).unwrap() + key.len();
    let end = start + json[start..].find([',', '}']).unwrap();
    format!("{}{value}{}", &json[..start], &json[end..])
}

/// One mutation of a valid record of the kind `kind`.
fn mutate(rng: &mut Rng, kind: &'static str, flow: &FlowRecord) -> Mutant {
    let json = flow.to_json();
    let mut record: Value = serde_json::from_str(&json).unwrap();
    let mutant = |line: String, field: &str, message: &str| Mutant {
        kind,
        line: line.into_bytes(),
        field: field.to_owned(),
        message: message.to_owned(),
    };
    match kind {
        "missing field" => {
            let key = REQUIRED[rng.below(REQUIRED.len())];
            object(&mut record, "").remove(key);
            mutant(record.to_string(), ".", &format!("missing field `{key}`"))
        }
        "wrong type" => {
            let keys: Vec<String> = object(&mut record, "").keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            let (value, mut message) = wrong_type(&record[key]);
            // serde_json reads a word of the vocabulary (a unit enum) only
            // from a string; anything else is, to it, not a value at all.
            if WORD_FIELDS.contains(&key.as_str()) {
                message = "expected value";
            }
            object(&mut record, "").insert(key.clone(), value);
            mutant(record.to_string(), key, message)
        }
        "unknown field" => {
            let parent = ["", "platform", "data", "consent", "recipient", "volume"][rng.below(6)];
            object(&mut record, parent).insert("shoe_size".into(), json!(42));
            mutant(record.to_string(), &path(parent, "shoe_size"), "unknown field `shoe_size`")
        }
        "duplicate field" => {
            let line = json.replacen("{\"id\":", "{\"id\":\"dup\",\"id\":", 1);
            mutant(line, ".", "duplicate field `id`")
        }
        "number out of range" => {
            let (field, key, max) = [
                ("retention_days", "retention_days", u64::from(u32::MAX)),
                ("data.k", "k", u64::from(u32::MAX)),
                ("volume.subjects", "subjects", u64::MAX),
            ][rng.below(3)];
            match rng.below(3) {
                0 => mutant(with_number(&json, key, "-1"), field, "invalid value: integer `-1`"),
                1 if max < u64::MAX => mutant(
                    with_number(&json, key, &(max + 1).to_string()),
                    field,
                    &format!("invalid value: integer `{}`", max + 1),
                ),
                // Past u64, serde_json reads the number as a float.
                _ => mutant(with_number(&json, key, "99999999999999999999999"), field, "invalid type: floating point"),
            }
        }
        "coverage out of range" => {
            let (value, message) = [
                ("-0.5", "invalid value: floating point `-0.5`, expected a share between 0 and 1"),
                ("2", "invalid value: floating point `2.0`, expected a share between 0 and 1"),
                ("1.0000001", "invalid value: floating point `1.0000001`, expected a share between 0 and 1"),
                ("NaN", "expected value"),
                ("1e400", "number out of range"),
            ][rng.below(5)];
            mutant(with_number(&json, "report_coverage", value), "report_coverage", message)
        }
        "deep nesting" => {
            let depth = 1 + rng.below(10_000);
            mutant(format!("{}{json}{}", "[".repeat(depth), "]".repeat(depth)), ".", "a record is a JSON object")
        }
        "long string" => {
            let (parent, key) = STRINGS[rng.below(STRINGS.len())];
            // The cap counts bytes: 342 three-byte characters are 1,026 bytes.
            let value = ["x".repeat(1025), "長".repeat(342), "y".repeat(100_000)][rng.below(3)].clone();
            let message = format!("invalid length {}, expected a string of at most 1024 bytes", value.len());
            object(&mut record, parent).insert(key.into(), json!(value));
            mutant(record.to_string(), &path(parent, key), &message)
        }
        "invalid utf-8" => {
            let (parent, key) = STRINGS[rng.below(STRINGS.len())];
            object(&mut record, parent).insert(key.into(), json!("before~~after"));
            let mut line = record.to_string().into_bytes();
            let at = line.windows(2).position(|w| w == b"~~").unwrap();
            line.splice(at..at + 2, [0xff]);
            Mutant { kind, line, field: path(parent, key), message: "invalid unicode code point".into() }
        }
        "cut short" => {
            let keys: Vec<String> = object(&mut record, "").keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            let cut = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
            mutant(json[..cut].to_owned(), key, "EOF while parsing a value")
        }
        "unknown word" => {
            let (parent, key) = WORDS[rng.below(WORDS.len())];
            let word = format!("sell_{}", object(&mut record, parent)[key].as_str().unwrap());
            object(&mut record, parent).insert(key.into(), json!(word));
            mutant(record.to_string(), &path(parent, key), &format!("unknown variant `{word}`"))
        }
        "bad category" => {
            let (value, field, message) = [
                (json!(["contact", "shoe_size"]), "data.categories[1]", "unknown variant `shoe_size`"),
                (json!(["contact", 7]), "data.categories[1]", "expected value"),
                (json!([]), "data.categories", "invalid length 0"),
                (json!("contact"), "data.categories", "invalid type: string \"contact\""),
            ][rng.below(4)]
            .clone();
            object(&mut record, "data").insert("categories".into(), value);
            mutant(record.to_string(), field, message)
        }
        "bad destination" => {
            let value = ["cn", "CHN", "C", "中国", "C1"][rng.below(5)];
            object(&mut record, "").insert("destination".into(), json!(value));
            mutant(record.to_string(), "destination", "invalid value")
        }
        other => panic!("no mutation `{other}`"),
    }
}

/// `count` mutants of generated records, every kind in turn.
fn mutants(seed: u64, count: usize) -> Vec<Mutant> {
    let mut rng = Rng::new(seed);
    sample::flows(seed, count)
        .iter()
        .enumerate()
        .map(|(n, flow)| mutate(&mut rng, KINDS[n % KINDS.len()], flow))
        .collect()
}

#[test]
fn each_mutation_is_an_error_naming_its_field() {
    let mut per_kind = std::collections::BTreeMap::new();
    for mutant in mutants(17, 3_000) {
        let err = match FlowRecord::from_json(&mutant.line) {
            Err(err) => err,
            Ok(_) => panic!("a `{}` mutant parsed: {}", mutant.kind, String::from_utf8_lossy(&mutant.line)),
        };
        assert_eq!(err.field(), mutant.field, "{}: {err}", mutant.kind);
        assert!(
            err.message().starts_with(&mutant.message),
            "{}: expected `{}`, got `{err}`",
            mutant.kind,
            mutant.message
        );
        *per_kind.entry(mutant.kind).or_insert(0) += 1;
    }
    assert_eq!(per_kind.len(), KINDS.len(), "{per_kind:?}");
}

#[test]
fn check_reports_each_bad_line_and_evaluates_the_rest() {
    let flows = sample::flows(18, 300);
    let bad = mutants(6, 300);
    let mut input = Vec::new();
    let mut expected_errors = Vec::new();
    for (n, (flow, mutant)) in flows.iter().zip(&bad).enumerate() {
        input.extend_from_slice(flow.to_json().as_bytes());
        input.push(b'\n');
        input.extend_from_slice(&mutant.line);
        input.push(b'\n');
        let err =
            FlowRecord::from_json(&mutant.line).err().unwrap_or_else(|| panic!("a `{}` mutant parsed", mutant.kind));
        expected_errors.push(format!("line {}: {err}", 2 * n + 2));
    }
    let run = flowgate(&["check", "-"], &input);
    assert_eq!(run.status, 1);
    let reported: Vec<&str> = run.stderr.lines().filter(|line| line.starts_with("line ")).collect();
    assert_eq!(reported, expected_errors);
    let decided: Vec<String> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    let good: Vec<String> = flows.iter().map(|flow| flow.id.clone()).collect();
    assert_eq!(decided, good, "every good line is decided, in order");
}

#[test]
fn specific_hostile_lines_get_specific_errors() {
    let base =
        r#"{"id":"h","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service""#;
    let cases: [(Vec<u8>, &str); 8] = [
        (
            format!("{base},\"consent\":{}1{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "line 1: `consent`: invalid type: sequence, expected an object",
        ),
        (format!("{base},\"report_coverage\":NaN}}").into_bytes(), "line 1: `report_coverage`: expected value"),
        (format!("{base},\"report_coverage\":-1}}").into_bytes(), "line 1: `report_coverage`: invalid value"),
        (
            format!("{base},\"volume\":{{\"subjects\":1e30}}}}").into_bytes(),
            "line 1: `volume.subjects`: invalid type: floating point",
        ),
        (format!("{}{base}}}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(), "line 1: a record is a JSON object"),
        ([b"{\"id\":\"\xff\"".as_slice(), &base.as_bytes()[9..], b"}"].concat(), "line 1: `id`: invalid unicode"),
        (format!("{base},\"id\":\"again\"}}").into_bytes(), "line 1: duplicate field `id`"),
        (
            format!("{{\"id\":\"{}\"}}", "x".repeat(2 << 20)).into_bytes(),
            "line 1: line of 2097161 bytes is longer than the 1048576 allowed",
        ),
    ];
    for (line, expected) in cases {
        let mut input = line.clone();
        input.extend_from_slice(b"\n{\"id\":\"ok\",\"platform\":{\"id\":\"p\"},\"action\":\"delete\",\"data\":{\"categories\":[\"contact\"]},\"purpose\":\"service\"}\n");
        let run = flowgate(&["check", "-"], &input);
        assert_eq!(run.status, 1, "{expected}");
        assert!(run.stderr.contains(expected), "expected `{expected}` in {}", run.stderr);
        assert_eq!(run.stdout.lines().count(), 1, "the good line after it is still evaluated");
    }
}
