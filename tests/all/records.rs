//! Bad records are errors that name the field and what was expected.

use flowgate::sdk::FlowRecord;

const VALID: &str =
    r#"{"id":"r","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#;

/// Parses `json` and returns (field, message) of the error.
fn error(json: &str) -> (String, String) {
    let err = FlowRecord::from_json(json.as_bytes()).expect_err(json);
    (err.field().to_owned(), err.message().to_owned())
}

fn with(field: &str, value: &str) -> String {
    format!("{},\"{field}\":{value}}}", &VALID[..VALID.len() - 1])
}

#[test]
fn the_valid_base_record_parses_with_conservative_defaults() {
    let flow = FlowRecord::from_json(VALID.as_bytes()).unwrap();
    assert_eq!(flow.lawful_basis, flowgate::sdk::LawfulBasis::None);
    assert_eq!(flow.consent.state, flowgate::sdk::ConsentState::None);
    assert!(!flow.impact_assessment && !flow.notice_given);
    assert_eq!(flow.report_coverage, 1.0);
    assert_eq!(flow.original_purpose(), flow.purpose);
    assert_eq!(flow.destination.as_str(), "CN");
}

#[test]
fn unknown_fields_are_named() {
    let (field, message) = error(&with("colour", "\"red\""));
    assert_eq!(field, "colour");
    assert!(message.contains("unknown field `colour`"), "{message}");
    let (field, message) = error(&VALID.replace(r#""id":"p""#, r#""id":"p","size":3"#));
    assert_eq!(field, "platform.size");
    assert!(message.contains("unknown field `size`"), "{message}");
}

#[test]
fn unknown_words_are_named_with_the_vocabulary() {
    let (field, message) = error(&VALID.replace(r#"["contact"]"#, r#"["contact","shoe_size"]"#));
    assert_eq!(field, "data.categories[1]");
    assert!(message.contains("unknown variant `shoe_size`"), "{message}");
    assert!(message.contains("`identity`"), "{message}");
    let (field, _) = error(&with("recipient", r#"{"kind":"friend"}"#));
    assert_eq!(field, "recipient.kind");
}

#[test]
fn wrong_types_are_named() {
    let (field, message) = error(&with("retention_days", "\"long\""));
    assert_eq!(field, "retention_days");
    assert!(message.contains("invalid type: string \"long\", expected u32"), "{message}");
    let (field, message) = error(&with("impact_assessment", "1"));
    assert_eq!(field, "impact_assessment");
    assert!(message.contains("expected a boolean"), "{message}");
}

#[test]
fn missing_required_fields_are_named() {
    let (_, message) =
        error(r#"{"platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#);
    assert!(message.contains("missing field `id`"), "{message}");
    let (field, message) = error(&VALID.replace(r#""platform":{"id":"p"}"#, r#""platform":{}"#));
    assert_eq!(field, "platform");
    assert!(message.contains("missing field `id`"), "{message}");
}

#[test]
fn values_out_of_range_are_refused() {
    let (field, message) = error(&with("report_coverage", "1.5"));
    assert_eq!(field, "report_coverage");
    assert!(message.contains("a share between 0 and 1"), "{message}");
    let (field, _) = error(&with("report_coverage", "-0.1"));
    assert_eq!(field, "report_coverage");
    let (field, message) = error(&with("retention_days", "4294967296"));
    assert_eq!(field, "retention_days");
    assert!(message.contains("expected u32"), "{message}");
    let (field, message) = error(&with("destination", "\"china\""));
    assert_eq!(field, "destination");
    assert!(message.contains("ISO 3166-1 alpha-2"), "{message}");
    let (field, message) = error(&VALID.replace(r#"["contact"]"#, "[]"));
    assert_eq!(field, "data.categories");
    assert!(message.contains("non-empty"), "{message}");
}

#[test]
fn duplicated_keys_and_trailing_text_are_refused() {
    let (_, message) = error(&VALID.replace(r#""id":"r","#, r#""id":"r","id":"s","#));
    assert!(message.contains("duplicate field `id`"), "{message}");
    let (_, message) = error(&format!("{VALID} {{}}"));
    assert!(message.contains("trailing characters"), "{message}");
}

#[test]
fn oversized_strings_are_refused() {
    let long = "x".repeat(flowgate::sdk::MAX_STRING_BYTES + 1);
    let (field, message) = error(&VALID.replace(r#""id":"r""#, &format!(r#""id":"{long}""#)));
    assert_eq!(field, "id");
    assert!(message.contains("at most 1024 bytes"), "{message}");
}

#[test]
fn records_and_their_parts_must_be_objects() {
    let (field, message) = error(r#"["r", "pipl", {"id":"p"}, "use"]"#);
    assert_eq!(field, ".");
    assert!(message.contains("a record is a JSON object"), "{message}");
    let (field, message) = error(&with("consent", r#"["given", "separate", true, true]"#));
    assert_eq!(field, "consent");
    assert!(message.contains("expected an object"), "{message}");
}
