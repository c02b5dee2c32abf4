//! Decisions to Arrow columns: the decision's JSON of `docs/flow-record.md`
//! as a table, one row per input row, in input order.
//!
//! | column | type | holds |
//! |---|---|---|
//! | `id` | string | the record's `id` (an invalid row's too, when it has a string there) |
//! | `effect` | string | the effect word; null for an invalid row |
//! | `obligations` | list of struct `kind`, `k`, `days` | `k` and `days` null for kinds without them |
//! | `remedies` | list of string | |
//! | `reasons` | list of struct `policy`, `version`, `rule`, `outcome`, `article`, `message` | `outcome` null where the manifest declares none |
//! | `error` | string | null, or the field-level message for a row that is not a valid record |
//!
//! The lists of an invalid row are null (it has no decision), so a row is
//! a decision exactly when `error` is null. Whole numbers are `int64`, the
//! type Spark and Parquet read without loss.

use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use flowgate::Decision;
use flowgate::sdk::Obligation;

fn obligation_fields() -> Fields {
    Fields::from(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("k", DataType::Int64, true),
        Field::new("days", DataType::Int64, true),
    ])
}

fn reason_fields() -> Fields {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Fields::from(vec![
        text("policy", false),
        text("version", false),
        text("rule", false),
        text("outcome", true),
        text("article", false),
        text("message", false),
    ])
}

fn list_of(item: DataType, nullable: bool) -> Field {
    Field::new("item", item, nullable)
}

/// The schema of `decide_batch`'s table.
pub(crate) fn decision_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("effect", DataType::Utf8, true),
        Field::new(
            "obligations",
            DataType::List(Arc::new(list_of(DataType::Struct(obligation_fields()), false))),
            true,
        ),
        Field::new("remedies", DataType::List(Arc::new(list_of(DataType::Utf8, false))), true),
        Field::new("reasons", DataType::List(Arc::new(list_of(DataType::Struct(reason_fields()), false))), true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// One row's outcome: its id, and its decision or why it has none.
pub(crate) struct Outcome<'a> {
    pub(crate) id: Option<&'a str>,
    pub(crate) decision: Result<Decision, String>,
}

/// The decisions of a part of a batch as one record batch.
pub(crate) fn decisions_batch(outcomes: &[Outcome<'_>]) -> RecordBatch {
    let rows = outcomes.len();
    // Every builder sized from one pass over the decisions: no buffer grows
    // (and is copied) while the columns are written.
    let mut size = Size::default();
    for outcome in outcomes {
        size.ids += outcome.id.map_or(0, str::len);
        match &outcome.decision {
            Ok(decision) => {
                size.obligations += decision.obligations.len();
                size.remedies += decision.remedies.len();
                for reason in &decision.reasons {
                    size.reasons += 1;
                    let texts =
                        [reason.policy(), reason.version(), reason.rule(), "", reason.article(), reason.message()];
                    for (bytes, text) in size.reason_bytes.iter_mut().zip(texts) {
                        *bytes += text.len();
                    }
                }
            }
            Err(error) => size.errors += error.len(),
        }
    }
    let mut ids = StringBuilder::with_capacity(rows, size.ids);
    let mut effects = StringBuilder::with_capacity(rows, rows * 24);
    let mut errors = StringBuilder::with_capacity(rows, size.errors);
    let mut valid = Vec::with_capacity(rows);
    let mut obligations = Lists::new(rows);
    let mut kinds = StringBuilder::with_capacity(size.obligations, size.obligations * 24);
    let (mut ks, mut days) =
        (Int64Builder::with_capacity(size.obligations), Int64Builder::with_capacity(size.obligations));
    let mut remedies = Lists::new(rows);
    let mut remedy_words = StringBuilder::with_capacity(size.remedies, size.remedies * 32);
    let mut reasons = Lists::new(rows);
    let mut reason_columns: [StringBuilder; 6] = std::array::from_fn(|column| {
        let bytes = if column == 3 { size.reasons * 12 } else { size.reason_bytes[column] };
        StringBuilder::with_capacity(size.reasons, bytes)
    });
    for outcome in outcomes {
        ids.append_option(outcome.id);
        match &outcome.decision {
            Ok(decision) => {
                valid.push(true);
                effects.append_value(decision.effect.as_str());
                errors.append_null();
                for obligation in &decision.obligations {
                    kinds.append_value(obligation.kind().as_str());
                    ks.append_option(match obligation {
                        Obligation::Aggregate { k } => Some(i64::from(*k)),
                        _ => None,
                    });
                    days.append_option(match obligation {
                        Obligation::LimitRetention { days } => Some(i64::from(*days)),
                        _ => None,
                    });
                }
                obligations.end(decision.obligations.len());
                for remedy in &decision.remedies {
                    remedy_words.append_value(remedy.as_str());
                }
                remedies.end(decision.remedies.len());
                for reason in &decision.reasons {
                    let [policy, version, rule, outcome, article, message] = &mut reason_columns;
                    policy.append_value(reason.policy());
                    version.append_value(reason.version());
                    rule.append_value(reason.rule());
                    outcome.append_option(reason.outcome().map(outcome_word));
                    article.append_value(reason.article());
                    message.append_value(reason.message());
                }
                reasons.end(decision.reasons.len());
            }
            Err(error) => {
                valid.push(false);
                effects.append_null();
                errors.append_value(error);
                obligations.end(0);
                remedies.end(0);
                reasons.end(0);
            }
        }
    }
    let nulls = NullBuffer::from(valid);
    let obligation_values = StructArray::new(
        obligation_fields(),
        vec![Arc::new(kinds.finish()) as ArrayRef, Arc::new(ks.finish()), Arc::new(days.finish())],
        None,
    );
    let reasons_values = StructArray::new(
        reason_fields(),
        reason_columns.iter_mut().map(|column| Arc::new(column.finish()) as ArrayRef).collect(),
        None,
    );
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids.finish()),
        Arc::new(effects.finish()),
        Arc::new(ListArray::new(
            Arc::new(list_of(DataType::Struct(obligation_fields()), false)),
            obligations.offsets(),
            Arc::new(obligation_values),
            Some(nulls.clone()),
        )),
        Arc::new(ListArray::new(
            Arc::new(list_of(DataType::Utf8, false)),
            remedies.offsets(),
            Arc::new(remedy_words.finish()),
            Some(nulls.clone()),
        )),
        Arc::new(ListArray::new(
            Arc::new(list_of(DataType::Struct(reason_fields()), false)),
            reasons.offsets(),
            Arc::new(reasons_values),
            Some(nulls),
        )),
        Arc::new(errors.finish()),
    ];
    RecordBatch::try_new(decision_schema(), columns).expect("the columns match the decision schema")
}

/// How many items and bytes a part's columns hold.
#[derive(Default)]
struct Size {
    ids: usize,
    errors: usize,
    obligations: usize,
    remedies: usize,
    reasons: usize,
    reason_bytes: [usize; 6],
}

/// The offsets of one list column, grown row by row.
struct Lists(Vec<i32>);

impl Lists {
    fn new(rows: usize) -> Lists {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Lists(offsets)
    }

    /// Ends a row of `len` items.
    fn end(&mut self, len: usize) {
        let last = *self.0.last().expect("starts with 0");
        self.0.push(last + i32::try_from(len).expect("a decision has few items"));
    }

    fn offsets(self) -> OffsetBuffer<i32> {
        OffsetBuffer::new(self.0.into())
    }
}

fn outcome_word(outcome: flowgate::RuleOutcome) -> &'static str {
    match outcome {
        flowgate::RuleOutcome::Deny => "deny",
        flowgate::RuleOutcome::Obligation => "obligation",
        flowgate::RuleOutcome::Allow => "allow",
    }
}
