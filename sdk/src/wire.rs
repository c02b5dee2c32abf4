//! The binary form of records and answers on the Wasm boundary.
//!
//! JSON is for files and logs; across the boundary a record is a fixed block
//! of [`FIXED_BYTES`] little-endian scalars followed by the strings its
//! policy declares it reads ([`StringFields`], in wire order), and an answer
//! is a slot of [`ANSWER_BYTES`] holding a few integers. Both sides use this
//! module, so the two cannot drift.
//!
//! A policy never decodes a record: it reads each field where the host wrote
//! it, when it asks for it, through a [`FlowView`](crate::FlowView) (the
//! offsets are [`at`]). It writes its answers the same way, each into its
//! slot of an answer area that the host reads where it lies
//! ([`write_answer`], [`read_answer`]). Nothing is built, copied or
//! allocated per record on either side but the answers themselves.
//!
//! Codes are those of the policy's own vocabulary: the host writes records
//! in its codes once ([`encode_record`]), and for a policy built against
//! another vocabulary translates each copy ([`translate_fixed`]) and each
//! answer ([`read_answer_translated`]) by the words of its
//! [`Schema`](crate::schema::Schema).
//!
//! The host never trusts what a guest wrote: every code and reserved byte
//! of an answer is checked, and a bad one is a [`WireError`], never a panic.

use std::fmt;

use crate::Obligation;
use crate::answer::{Answer, ObligationSet, RemedySet};
use crate::record::FlowRecord;
use crate::schema::{StringFields, Vocabulary};
use crate::vocabulary::*;

/// A malformed buffer: what was being read and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// Sentinel for "original_purpose not given" (it then equals `purpose`).
pub(crate) const SAME_PURPOSE: u8 = 0xff;

/// Where each field sits in a record's fixed block: one byte per word and
/// flag, then the category set and the numbers, little-endian.
pub mod at {
    /// `regime`.
    pub const REGIME: usize = 0;
    /// `platform.sector`.
    pub const SECTOR: usize = 1;
    /// `platform.ciio`.
    pub const CIIO: usize = 2;
    /// `action`.
    pub const ACTION: usize = 3;
    /// `data.dsl_class`.
    pub const DSL_CLASS: usize = 4;
    /// `data.important_notified`.
    pub const IMPORTANT_NOTIFIED: usize = 5;
    /// `data.credit_information`.
    pub const CREDIT_INFORMATION: usize = 6;
    /// `data.deidentification`.
    pub const DEIDENTIFICATION: usize = 7;
    /// `purpose`.
    pub const PURPOSE: usize = 8;
    /// `original_purpose`, `0xff` when not given.
    pub const ORIGINAL_PURPOSE: usize = 9;
    /// `lawful_basis`.
    pub const LAWFUL_BASIS: usize = 10;
    /// `consent.state`.
    pub const CONSENT_STATE: usize = 11;
    /// `consent.kind`.
    pub const CONSENT_KIND: usize = 12;
    /// `consent.covers_purpose`.
    pub const COVERS_PURPOSE: usize = 13;
    /// `consent.covers_recipient`.
    pub const COVERS_RECIPIENT: usize = 14;
    /// `recipient.kind`.
    pub const RECIPIENT_KIND: usize = 15;
    /// `export_mechanism`.
    pub const EXPORT_MECHANISM: usize = 16;
    /// `impact_assessment`.
    pub const IMPACT_ASSESSMENT: usize = 17;
    /// `notice_given`.
    pub const NOTICE_GIVEN: usize = 18;
    /// `automated_decision`.
    pub const AUTOMATED_DECISION: usize = 19;
    /// `price_differentiated`.
    pub const PRICE_DIFFERENTIATED: usize = 20;
    /// `destination`: two ASCII letters.
    pub const DESTINATION: usize = 21;
    /// `data.categories`: a `u16` bit set.
    pub const CATEGORIES: usize = 23;
    /// `data.k`: `u32`.
    pub const K: usize = 25;
    /// `retention_days`: `u32`.
    pub const RETENTION_DAYS: usize = 29;
    /// `volume.subjects`: `u64`.
    pub const SUBJECTS: usize = 33;
    /// `volume.ytd_export_subjects`: `u64`.
    pub const YTD_EXPORT_SUBJECTS: usize = 41;
    /// `volume.ytd_export_sensitive_subjects`: `u64`.
    pub const YTD_EXPORT_SENSITIVE_SUBJECTS: usize = 49;
    /// `report_coverage`: the bits of an `f64`.
    pub const REPORT_COVERAGE: usize = 57;
}

/// The size of a record's fixed block: every word, flag and number, before
/// the strings.
pub const FIXED_BYTES: usize = at::REPORT_COVERAGE + 8;

/// Where each single word sits in the fixed block, and its vocabulary.
const WORDS_AT: [(usize, Vocabulary); 12] = [
    (at::REGIME, Vocabulary::Regime),
    (at::SECTOR, Vocabulary::Sector),
    (at::ACTION, Vocabulary::Action),
    (at::DSL_CLASS, Vocabulary::DslClass),
    (at::DEIDENTIFICATION, Vocabulary::Deidentification),
    (at::PURPOSE, Vocabulary::Purpose),
    (at::ORIGINAL_PURPOSE, Vocabulary::Purpose),
    (at::LAWFUL_BASIS, Vocabulary::LawfulBasis),
    (at::CONSENT_STATE, Vocabulary::ConsentState),
    (at::CONSENT_KIND, Vocabulary::ConsentKind),
    (at::RECIPIENT_KIND, Vocabulary::RecipientKind),
    (at::EXPORT_MECHANISM, Vocabulary::ExportMechanism),
];

/// Appends the binary form of `record` to `out`: the fixed block, then its
/// four strings, each a `u32` length and its bytes.
pub fn encode_record(record: &FlowRecord, out: &mut Vec<u8>) {
    let mut fixed = [0u8; FIXED_BYTES];
    fixed[at::REGIME] = record.regime.code();
    fixed[at::SECTOR] = record.platform.sector.code();
    fixed[at::CIIO] = u8::from(record.platform.ciio);
    fixed[at::ACTION] = record.action.code();
    fixed[at::DSL_CLASS] = record.data.dsl_class.code();
    fixed[at::IMPORTANT_NOTIFIED] = u8::from(record.data.important_notified);
    fixed[at::CREDIT_INFORMATION] = u8::from(record.data.credit_information);
    fixed[at::DEIDENTIFICATION] = record.data.deidentification.code();
    fixed[at::PURPOSE] = record.purpose.code();
    fixed[at::ORIGINAL_PURPOSE] = record.original_purpose.map_or(SAME_PURPOSE, Purpose::code);
    fixed[at::LAWFUL_BASIS] = record.lawful_basis.code();
    fixed[at::CONSENT_STATE] = record.consent.state.code();
    fixed[at::CONSENT_KIND] = record.consent.kind.code();
    fixed[at::COVERS_PURPOSE] = u8::from(record.consent.covers_purpose);
    fixed[at::COVERS_RECIPIENT] = u8::from(record.consent.covers_recipient);
    fixed[at::RECIPIENT_KIND] = record.recipient.kind.code();
    fixed[at::EXPORT_MECHANISM] = record.export_mechanism.code();
    fixed[at::IMPACT_ASSESSMENT] = u8::from(record.impact_assessment);
    fixed[at::NOTICE_GIVEN] = u8::from(record.notice_given);
    fixed[at::AUTOMATED_DECISION] = u8::from(record.automated_decision);
    fixed[at::PRICE_DIFFERENTIATED] = u8::from(record.price_differentiated);
    fixed[at::DESTINATION..at::DESTINATION + 2].copy_from_slice(&record.destination.bytes());
    fixed[at::CATEGORIES..at::CATEGORIES + 2].copy_from_slice(&record.data.categories.bits().to_le_bytes());
    fixed[at::K..at::K + 4].copy_from_slice(&record.data.k.to_le_bytes());
    fixed[at::RETENTION_DAYS..at::RETENTION_DAYS + 4].copy_from_slice(&record.retention_days.to_le_bytes());
    let volume = &record.volume;
    fixed[at::SUBJECTS..at::SUBJECTS + 8].copy_from_slice(&volume.subjects.to_le_bytes());
    fixed[at::YTD_EXPORT_SUBJECTS..at::YTD_EXPORT_SUBJECTS + 8]
        .copy_from_slice(&volume.ytd_export_subjects.to_le_bytes());
    fixed[at::YTD_EXPORT_SENSITIVE_SUBJECTS..at::YTD_EXPORT_SENSITIVE_SUBJECTS + 8]
        .copy_from_slice(&volume.ytd_export_sensitive_subjects.to_le_bytes());
    fixed[at::REPORT_COVERAGE..].copy_from_slice(&record.report_coverage.to_le_bytes());
    let strings = [&record.id, &record.platform.id, &record.recipient.id, &record.recipient.licence];
    out.reserve(FIXED_BYTES + strings.iter().map(|text| 4 + text.len()).sum::<usize>());
    out.extend_from_slice(&fixed);
    for text in strings {
        let len = u32::try_from(text.len()).expect("record strings are bounded");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
}

/// `record` exactly as a policy that reads `reads` receives it: the fixed
/// block and only the declared strings. For asking a policy natively what
/// its Wasm build would be asked (a wrong [`StringFields`] declaration
/// then shows).
pub fn encode_as_received(record: &FlowRecord, reads: StringFields) -> Vec<u8> {
    let mut full = Vec::new();
    encode_record(record, &mut full);
    let mut declared = vec![0; declared_len(&full, reads)];
    copy_declared(&full, reads, &mut declared);
    declared
}

/// The size of `record` (as [`encode_record`] wrote it) as a policy that
/// reads `reads` receives it.
pub fn declared_len(record: &[u8], reads: StringFields) -> usize {
    if reads == StringFields::ALL {
        return record.len();
    }
    if reads == StringFields::NONE {
        return FIXED_BYTES;
    }
    let mut len = FIXED_BYTES;
    for_each_string(record, |n, string| {
        if reads.has(n) {
            len += string.len();
        }
    });
    len
}

/// Copies `record` (as [`encode_record`] wrote it) into `out`, keeping only
/// the strings in `reads`; `out` is [`declared_len`] bytes long.
pub fn copy_declared(record: &[u8], reads: StringFields, out: &mut [u8]) {
    if reads == StringFields::ALL {
        out.copy_from_slice(record);
        return;
    }
    out[..FIXED_BYTES].copy_from_slice(&record[..FIXED_BYTES]);
    if reads == StringFields::NONE {
        return;
    }
    let mut at = FIXED_BYTES;
    for_each_string(record, |n, string| {
        if reads.has(n) {
            out[at..at + string.len()].copy_from_slice(string);
            at += string.len();
        }
    });
}

/// Calls `f` with each string of an encoded record, length prefix included.
fn for_each_string(record: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut at = FIXED_BYTES;
    for n in 0..StringFields::NAMES.len() {
        let len = u32::from_le_bytes(record[at..at + 4].try_into().expect("four bytes")) as usize;
        f(n, &record[at..at + 4 + len]);
        at += 4 + len;
    }
}

/// A word a policy's vocabulary lacks: the vocabulary and the host's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownWord {
    /// Where the word is.
    pub vocabulary: Vocabulary,
    /// Its code in the writer's vocabulary.
    pub code: u8,
}

/// Rewrites the codes of a fixed block (the first [`FIXED_BYTES`] of an
/// encoded record) through `to_policy`, which maps a code of one
/// vocabulary to another's, or to `None` for a word the other lacks.
/// On a word it lacks, the block is left partly rewritten and must not be used.
pub fn translate_fixed(fixed: &mut [u8], to_policy: impl Fn(Vocabulary, u8) -> Option<u8>) -> Result<(), UnknownWord> {
    for (at, vocabulary) in WORDS_AT {
        let code = fixed[at];
        if at == at::ORIGINAL_PURPOSE && code == SAME_PURPOSE {
            continue;
        }
        fixed[at] = to_policy(vocabulary, code).ok_or(UnknownWord { vocabulary, code })?;
    }
    let bits = u16::from_le_bytes([fixed[at::CATEGORIES], fixed[at::CATEGORIES + 1]]);
    let translated = translate_bits(bits, |code| to_policy(Vocabulary::Category, code))
        .map_err(|code| UnknownWord { vocabulary: Vocabulary::Category, code })?;
    fixed[at::CATEGORIES..at::CATEGORIES + 2].copy_from_slice(&translated.to_le_bytes());
    Ok(())
}

/// Maps every set bit of a 16-bit set through `map`; `Err` names the first
/// code it cannot map.
fn translate_bits(bits: u16, map: impl Fn(u8) -> Option<u8>) -> Result<u16, u8> {
    let mut out = 0u16;
    for code in set_bits(bits) {
        let to = map(code).filter(|to| *to < 16).ok_or(code)?;
        out |= 1 << to;
    }
    Ok(out)
}

/// The codes of the set bits, lowest first (an answer sets few, often none).
fn set_bits(bits: u16) -> impl Iterator<Item = u8> {
    let mut rest = bits;
    std::iter::from_fn(move || {
        let code = rest.trailing_zeros() as u8;
        rest &= rest.wrapping_sub(1);
        (code < 16).then_some(code)
    })
}

/// The size of one answer in an answer area.
///
/// | offset | size | what |
/// |---|---|---|
/// | 0 | 1 | effect: 0 `allow`, 1 `allow_with_obligations`, 2 `deny`, 3 `not_applicable` |
/// | 1 | 1 | zero |
/// | 2 | 2 | remedies, a bit set (bit `n`: the remedy of code `n`) |
/// | 4 | 2 | obligation kinds, a bit set |
/// | 6 | 2 | zero |
/// | 8 | 8 | the rules that fired, a bit set over the rule table |
/// | 16 | 4 × 4 | the parameters of the obligation kinds present that take one (`aggregate`: `k`, `limit_retention`: `days`), in code order; the rest zero |
///
/// Every integer is little-endian. A batch's answers lie one after the
/// other, in the order of its records.
pub const ANSWER_BYTES: usize = 32;

/// Where the parameters start in an answer, and how many it holds.
const PARAMETERS_AT: usize = 16;
const PARAMETERS: usize = 4;

/// Writes `answer` into its slot of an answer area.
pub fn write_answer(answer: &Answer, slot: &mut [u8; ANSWER_BYTES]) {
    let obligations = answer.obligations();
    let mut parameters = [0u32; PARAMETERS];
    let mut taken = 0;
    for code in set_bits(obligations.kind_bits()) {
        let kind = ObligationKind::from_code(code).expect("a set holds only its own kinds");
        if kind.takes_parameter() {
            // An answer holds each kind at most once, and fewer kinds take
            // a parameter than it has room for.
            parameters[taken] = obligations.parameter(kind);
            taken += 1;
        }
    }
    let mut bytes = [0u8; ANSWER_BYTES];
    bytes[0] = answer.effect().code();
    bytes[2..4].copy_from_slice(&answer.remedies().bits().to_le_bytes());
    bytes[4..6].copy_from_slice(&obligations.kind_bits().to_le_bytes());
    bytes[8..16].copy_from_slice(&answer.fired_bits().to_le_bytes());
    for (n, parameter) in parameters.iter().enumerate() {
        bytes[PARAMETERS_AT + 4 * n..PARAMETERS_AT + 4 * n + 4].copy_from_slice(&parameter.to_le_bytes());
    }
    *slot = bytes;
}

/// Reads one answer, checking every code, the reserved bytes, and that the
/// parts agree with the effect.
pub fn read_answer(slot: &[u8; ANSWER_BYTES]) -> Result<Answer, WireError> {
    read_answer_translated(slot, |_, code| Some(code))
}

/// Reads one answer written in another vocabulary: `to_reader` maps a
/// remedy or obligation code of the writer to the reader's, or to `None`
/// for a word the reader lacks. Such an answer is refused: an answer the
/// reader cannot state in full is not used.
pub fn read_answer_translated(
    slot: &[u8; ANSWER_BYTES],
    to_reader: impl Fn(Vocabulary, u8) -> Option<u8>,
) -> Result<Answer, WireError> {
    let u16_at = |at: usize| u16::from_le_bytes([slot[at], slot[at + 1]]);
    let effect = Effect::from_code(slot[0]).ok_or(WireError("answer effect"))?;
    if slot[1] != 0 || u16_at(6) != 0 {
        return Err(WireError("answer: reserved bytes are not zero"));
    }
    let remedies = translate_bits(u16_at(2), |code| to_reader(Vocabulary::Remedy, code))
        .ok()
        .and_then(RemedySet::from_bits)
        .ok_or(WireError("answer remedies"))?;
    let parameter = |n: usize| {
        let at = PARAMETERS_AT + 4 * n;
        u32::from_le_bytes([slot[at], slot[at + 1], slot[at + 2], slot[at + 3]])
    };
    let mut obligations = ObligationSet::EMPTY;
    let mut taken = 0;
    for code in set_bits(u16_at(4)) {
        let kind = to_reader(Vocabulary::Obligation, code)
            .and_then(ObligationKind::from_code)
            .ok_or(WireError("answer obligations"))?;
        let value = if kind.takes_parameter() {
            taken += 1;
            parameter(taken - 1)
        } else {
            0
        };
        obligations.insert(Obligation::new(kind, value));
    }
    if (taken..PARAMETERS).any(|n| parameter(n) != 0) {
        return Err(WireError("answer: a parameter without its obligation"));
    }
    let fired = u64::from_le_bytes(slot[8..16].try_into().expect("eight bytes"));
    Answer::from_parts(effect, obligations, remedies, fired)
        .map_err(|_| WireError("answer: parts contradict the effect"))
}

// Every kind that takes a parameter fits in an answer at once.
const _: () = {
    let mut with_parameter = 0;
    let mut n = 0;
    while n < ObligationKind::ALL.len() {
        if ObligationKind::ALL[n].takes_parameter() {
            with_parameter += 1;
        }
        n += 1;
    }
    assert!(with_parameter <= PARAMETERS);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowView;
    use crate::answer::RuleId;

    fn record(json: &str) -> FlowRecord {
        FlowRecord::from_json(json.as_bytes()).unwrap()
    }

    fn encoded(flow: &FlowRecord) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_record(flow, &mut bytes);
        bytes
    }

    #[test]
    fn the_fixed_block_holds_each_field_at_its_offset() {
        let flow = record(
            r#"{"id":"f","platform":{"id":"p","sector":"payments","ciio":true},"action":"export",
            "data":{"categories":["contact","minor"],"k":7},"purpose":"marketing","original_purpose":"service",
            "destination":"SG","retention_days":30,"volume":{"subjects":1,"ytd_export_subjects":2,
            "ytd_export_sensitive_subjects":3},"report_coverage":0.5}"#,
        );
        let bytes = encoded(&flow);
        assert_eq!(bytes[at::SECTOR], Sector::Payments.code());
        assert_eq!(bytes[at::CIIO], 1);
        assert_eq!(bytes[at::ACTION], Action::Export.code());
        assert_eq!(bytes[at::ORIGINAL_PURPOSE], Purpose::Service.code());
        assert_eq!(&bytes[at::DESTINATION..at::DESTINATION + 2], b"SG");
        assert_eq!(u16::from_le_bytes([bytes[at::CATEGORIES], bytes[at::CATEGORIES + 1]]), flow.data.categories.bits());
        assert_eq!(bytes[at::K], 7);
        assert_eq!(bytes[at::RETENTION_DAYS], 30);
        assert_eq!(
            (bytes[at::SUBJECTS], bytes[at::YTD_EXPORT_SUBJECTS], bytes[at::YTD_EXPORT_SENSITIVE_SUBJECTS]),
            (1, 2, 3)
        );
        assert_eq!(&bytes[at::REPORT_COVERAGE..FIXED_BYTES], &0.5f64.to_le_bytes());
        assert_eq!(&bytes[FIXED_BYTES..FIXED_BYTES + 5], &[1, 0, 0, 0, b'f']);
        let same = record(
            r#"{"id":"f","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        assert_eq!(encoded(&same)[at::ORIGINAL_PURPOSE], SAME_PURPOSE);
    }

    #[test]
    fn a_policy_receives_only_the_strings_it_declares() {
        let flow = record(
            r#"{"id":"flow-1","platform":{"id":"p-2"},"action":"share","data":{"categories":["contact"]},
            "purpose":"service","recipient":{"kind":"credit_bureau","id":"bureau-3","licence":"L-4"}}"#,
        );
        let full = encoded(&flow);
        let reads = StringFields::RECIPIENT_ID | StringFields::RECIPIENT_LICENCE;
        for reads in [StringFields::NONE, StringFields::ID, reads, StringFields::ALL] {
            let mut copy = vec![0; declared_len(&full, reads)];
            copy_declared(&full, reads, &mut copy);
            assert_eq!(copy, encode_as_received(&flow, reads));
            let seen = FlowView::new(&copy, reads).unwrap();
            let strings = [seen.id(), seen.platform().id(), seen.recipient().id(), seen.recipient().licence()];
            let given = [&flow.id, &flow.platform.id, &flow.recipient.id, &flow.recipient.licence];
            for (n, (seen, given)) in strings.into_iter().zip(given).enumerate() {
                assert_eq!(seen.is_empty(), !reads.has(n), "{reads:?}, string {n}");
                if reads.has(n) {
                    assert_eq!(seen, given);
                }
            }
            assert_eq!((seen.action(), seen.recipient().kind()), (flow.action, flow.recipient.kind));
        }
        assert_eq!(declared_len(&full, StringFields::NONE), FIXED_BYTES);
    }

    #[test]
    fn translation_maps_words_by_name_and_refuses_a_missing_one() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["minor","health"]},"purpose":"service"}"#,
        );
        let bytes = encoded(&flow);
        // A reader whose categories lack `health` (code 10): later codes move down one.
        let without_health = |vocabulary, code: u8| match vocabulary {
            Vocabulary::Category if code == Category::Health.code() => None,
            Vocabulary::Category if code > Category::Health.code() => Some(code - 1),
            _ => Some(code),
        };
        let mut fixed = bytes[..FIXED_BYTES].to_vec();
        let err = translate_fixed(&mut fixed, without_health).unwrap_err();
        assert_eq!(err, UnknownWord { vocabulary: Vocabulary::Category, code: Category::Health.code() });

        let minor_only = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["minor"]},"purpose":"service"}"#,
        );
        let mut bytes = encoded(&minor_only);
        translate_fixed(&mut bytes[..FIXED_BYTES], without_health).unwrap();
        let moved = FlowView::new(&bytes, StringFields::ALL).unwrap();
        assert_eq!(moved.data().categories().bits(), 1 << (Category::Minor.code() - 1));

        let mut answer = Answer::applies();
        answer.deny(RuleId::new(0), &[crate::Remedy::Pseudonymise]);
        let mut slot = [0; ANSWER_BYTES];
        write_answer(&answer, &mut slot);
        let shifted = |vocabulary, code: u8| (vocabulary == Vocabulary::Remedy).then(|| code - 1);
        let read = read_answer_translated(&slot, shifted).unwrap();
        assert_eq!(read.remedies().bits(), 1 << (crate::Remedy::Pseudonymise.code() - 1));
        let lacking = |_, _| None;
        assert_eq!(read_answer_translated(&slot, lacking).unwrap_err(), WireError("answer remedies"));
    }

    #[test]
    fn answers_round_trip_through_their_slots() {
        let mut deny = Answer::applies();
        deny.deny(RuleId::new(3), &[crate::Remedy::ObtainConsent]).fire(RuleId::new(63));
        let mut obliged = Answer::applies();
        obliged
            .oblige(RuleId::new(0), Obligation::LimitRetention { days: 365 })
            .oblige(RuleId::new(1), Obligation::LogToRegulator)
            .oblige(RuleId::new(2), Obligation::Aggregate { k: 4_000_000_000 });
        for answer in [deny, obliged, Answer::applies(), Answer::not_applicable()] {
            let mut slot = [0xaa; ANSWER_BYTES];
            write_answer(&answer, &mut slot);
            assert_eq!(read_answer(&slot).unwrap(), answer);
            assert_eq!(read_answer(&slot).unwrap().fired_bits(), answer.fired_bits());
        }
        let mut slot = [0; ANSWER_BYTES];
        write_answer(&obliged, &mut slot);
        // Parameters in code order: `aggregate` (k) before `limit_retention` (days).
        assert_eq!(&slot[16..24], &[0x00, 0x28, 0x6b, 0xee, 0x6d, 0x01, 0, 0]);
        assert_eq!(&slot[24..32], &[0; 8]);
    }

    #[test]
    fn every_lie_in_an_answer_slot_is_refused() {
        let mut answer = Answer::applies();
        answer.deny(RuleId::new(3), &[crate::Remedy::ObtainConsent]);
        let mut honest = [0; ANSWER_BYTES];
        write_answer(&answer, &mut honest);
        let lie = |at: usize, byte: u8| {
            let mut slot = honest;
            slot[at] = byte;
            read_answer(&slot).unwrap_err()
        };
        assert_eq!(lie(0, 0xee), WireError("answer effect"));
        // An allow that carries remedies contradicts itself.
        assert_eq!(lie(0, Effect::Allow.code()), WireError("answer: parts contradict the effect"));
        assert_eq!(lie(1, 1), WireError("answer: reserved bytes are not zero"));
        assert_eq!(lie(7, 1), WireError("answer: reserved bytes are not zero"));
        assert_eq!(lie(3, 0x80), WireError("answer remedies"));
        assert_eq!(lie(5, 0x80), WireError("answer obligations"));
        assert_eq!(lie(20, 1), WireError("answer: a parameter without its obligation"));
        assert_eq!(lie(31, 1), WireError("answer: a parameter without its obligation"));
    }
}
