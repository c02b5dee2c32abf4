//! Hostile records: generated and mutated JSON lines (wrong types, missing
//! fields, unknown words, duplicated keys, huge numbers, bad coverage, deep
//! nesting, megabyte strings, invalid UTF-8) through the library and the
//! CLI. Each bad line is a clear error for that line; the rest of the file
//! is evaluated; nothing panics.

use flowgate::sdk::FlowRecord;
use flowgate_reference_set::sample::{self, Rng};

use crate::flowgate;

/// One random mutation of a valid record's JSON (it may happen to stay valid).
fn mutate(rng: &mut Rng, json: &str) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    let object = value.as_object_mut().unwrap();
    let keys: Vec<String> = object.keys().cloned().collect();
    let key = keys[rng.below(keys.len())].clone();
    let text = match rng.below(12) {
        0 => {
            object.remove(&key);
            value.to_string()
        }
        1 => {
            object.insert(key, random_value(rng));
            value.to_string()
        }
        2 => {
            object.insert("unexpected_field".into(), serde_json::Value::Bool(true));
            value.to_string()
        }
        3 => json.replacen("{\"id\":", "{\"id\":\"dup\",\"id\":", 1),
        4 => json.replacen("\"retention_days\":", "\"retention_days\":99999999999999999999999,\"x\":", 1),
        5 => json.replacen(
            "\"report_coverage\":",
            &format!("\"report_coverage\":{},\"y\":", ["-0.5", "NaN", "1e400", "2"][rng.below(4)]),
            1,
        ),
        6 => format!("{}{json}{}", "[".repeat(10_000), "]".repeat(10_000)),
        7 => json.replacen("\"id\":\"", &format!("\"id\":\"{}", "x".repeat(1 << 20)), 1),
        8 => {
            let mut bytes = json.as_bytes().to_vec();
            let at = rng.below(bytes.len());
            bytes.insert(at, 0xff);
            return bytes;
        }
        9 => json[..rng.below(json.len())].to_owned(),
        10 => json.replacen("\"action\":\"", "\"action\":\"sell_", 1),
        _ => {
            object.insert("data".into(), serde_json::json!({"categories": [random_value(rng)]}));
            value.to_string()
        }
    };
    text.into_bytes()
}

fn random_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(7) {
        0 => json!(null),
        1 => json!(rng.next_u64()),
        2 => json!(-1),
        3 => json!("shoe_size"),
        4 => json!([1, 2, 3]),
        5 => json!({"nested": {"deeper": true}}),
        _ => json!(1.5),
    }
}

#[test]
fn mutated_records_are_errors_or_records_never_panics() {
    let mut rng = Rng::new(5);
    let mut errors = 0;
    for flow in sample::flows(17, 3_000) {
        let mutant = mutate(&mut rng, &flow.to_json());
        if let Err(err) = FlowRecord::from_json(&mutant) {
            assert!(!err.message().is_empty());
            errors += 1;
        }
    }
    assert!(errors > 2_000, "most mutations must be invalid, got {errors} errors");
}

#[test]
fn check_reports_each_bad_line_and_evaluates_the_rest() {
    let mut rng = Rng::new(6);
    let flows = sample::flows(18, 600);
    let mut input = Vec::new();
    let mut good_ids = Vec::new();
    let mut bad_lines = 0;
    for (n, flow) in flows.iter().enumerate() {
        if n % 2 == 0 {
            input.extend_from_slice(flow.to_json().as_bytes());
            good_ids.push(flow.id.clone());
        } else {
            let mutant = mutate(&mut rng, &flow.to_json());
            bad_lines += usize::from(FlowRecord::from_json(&mutant).is_err());
            input.extend(mutant.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
        }
        input.push(b'\n');
    }
    let run = flowgate(&["check", "-"], &input);
    assert_eq!(run.status, 1);
    assert_eq!(run.stderr.lines().filter(|line| line.starts_with("line ")).count(), bad_lines, "{}", run.stderr);
    let decided: Vec<String> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decided.len(), flows.len() - bad_lines);
    for id in &good_ids {
        assert!(decided.contains(id), "good record {id} was not decided");
    }
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
