//! The binary form of records and answers on the Wasm boundary.
//!
//! JSON is for files and logs; across the boundary a record is a fixed block
//! of [`FIXED_BYTES`] little-endian scalars followed by the strings its
//! policy declares it reads ([`StringFields`], in wire order), and an answer
//! is a few integers. Both sides use this module, so the two cannot drift,
//! and a record decodes to exactly the value that was encoded (tests check
//! the round trip against the canonical JSON).
//!
//! Codes are those of the policy's own vocabulary: the host writes records
//! in its codes once ([`encode_record`]), and for a policy built against
//! another vocabulary translates each copy ([`translate_fixed`]) and each
//! answer ([`decode_answer_translated`]) by the words of its
//! [`Schema`](crate::schema::Schema).
//!
//! A batch is `count: u32` followed by `count` items. Decoding never trusts
//! its input: every length and code is checked and a bad one is a
//! [`WireError`], never a panic.

use std::fmt;

use crate::Obligation;
use crate::answer::{Answer, ObligationSet, RemedySet};
use crate::record::{Categories, Consent, CountryCode, Data, FlowRecord, Platform, Recipient, Volume};
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
pub const FIXED_BYTES: usize = 23 + 2 + 4 + 4 + 3 * 8 + 8;

/// Where each single word sits in the fixed block, and its vocabulary.
const WORDS_AT: [(usize, Vocabulary); 12] = [
    (0, Vocabulary::Regime),
    (1, Vocabulary::Sector),
    (3, Vocabulary::Action),
    (4, Vocabulary::DslClass),
    (7, Vocabulary::Deidentification),
    (8, Vocabulary::Purpose),
    (9, Vocabulary::Purpose),
    (10, Vocabulary::LawfulBasis),
    (11, Vocabulary::ConsentState),
    (12, Vocabulary::ConsentKind),
    (15, Vocabulary::RecipientKind),
    (16, Vocabulary::ExportMechanism),
];
/// Where the category set sits in the fixed block.
const CATEGORIES_AT: usize = 23;

/// Appends the binary form of `record` to `out`.
pub fn encode_record(record: &FlowRecord, out: &mut Vec<u8>) {
    let bytes = [
        record.regime.code(),
        record.platform.sector.code(),
        u8::from(record.platform.ciio),
        record.action.code(),
        record.data.dsl_class.code(),
        u8::from(record.data.important_notified),
        u8::from(record.data.credit_information),
        record.data.deidentification.code(),
        record.purpose.code(),
        record.original_purpose.map_or(SAME_PURPOSE, Purpose::code),
        record.lawful_basis.code(),
        record.consent.state.code(),
        record.consent.kind.code(),
        u8::from(record.consent.covers_purpose),
        u8::from(record.consent.covers_recipient),
        record.recipient.kind.code(),
        record.export_mechanism.code(),
        u8::from(record.impact_assessment),
        u8::from(record.notice_given),
        u8::from(record.automated_decision),
        u8::from(record.price_differentiated),
        record.destination.bytes()[0],
        record.destination.bytes()[1],
    ];
    out.extend_from_slice(&bytes);
    out.extend_from_slice(&record.data.categories.bits().to_le_bytes());
    out.extend_from_slice(&record.data.k.to_le_bytes());
    out.extend_from_slice(&record.retention_days.to_le_bytes());
    out.extend_from_slice(&record.volume.subjects.to_le_bytes());
    out.extend_from_slice(&record.volume.ytd_export_subjects.to_le_bytes());
    out.extend_from_slice(&record.volume.ytd_export_sensitive_subjects.to_le_bytes());
    out.extend_from_slice(&record.report_coverage.to_le_bytes());
    for text in [&record.id, &record.platform.id, &record.recipient.id, &record.recipient.licence] {
        encode_str(text, out);
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
        if at == 9 && code == SAME_PURPOSE {
            continue;
        }
        fixed[at] = to_policy(vocabulary, code).ok_or(UnknownWord { vocabulary, code })?;
    }
    let bits = u16::from_le_bytes([fixed[CATEGORIES_AT], fixed[CATEGORIES_AT + 1]]);
    let translated = translate_bits(bits, |code| to_policy(Vocabulary::Category, code))
        .map_err(|code| UnknownWord { vocabulary: Vocabulary::Category, code })?;
    fixed[CATEGORIES_AT..CATEGORIES_AT + 2].copy_from_slice(&translated.to_le_bytes());
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

/// `record` exactly as a policy that reads `reads` receives it, through the
/// wire: the other strings empty. For running a policy natively on what its
/// Wasm build would see (a wrong [`StringFields`] declaration then shows).
pub fn as_received(record: &FlowRecord, reads: StringFields) -> FlowRecord {
    let declared = encode_as_received(record, reads);
    let mut received = blank_record();
    decode_record_into(&mut Reader::new(&declared), &mut received, reads).expect("an encoded record decodes");
    received
}

/// Reads one record into `record`, reusing its string buffers; only the
/// strings in `reads` are on the wire, and the others are left empty.
///
/// A guest decodes every record of a batch into one scratch record, so the
/// hot path allocates nothing once the strings have grown to size.
pub fn decode_record_into(
    input: &mut Reader<'_>,
    record: &mut FlowRecord,
    reads: StringFields,
) -> Result<(), WireError> {
    // The fixed block in one read: every field below is then at a known
    // offset of a known-size array, so the compiler drops the per-field
    // bounds checks (this runs once per record in every policy).
    let block: [u8; FIXED_BYTES] = input.take("record")?;
    let mut fixed = Reader::new(&block);
    record.regime = fixed.word("regime")?;
    record.platform.sector = fixed.word("platform.sector")?;
    record.platform.ciio = fixed.flag("platform.ciio")?;
    record.action = fixed.word("action")?;
    record.data.dsl_class = fixed.word("data.dsl_class")?;
    record.data.important_notified = fixed.flag("data.important_notified")?;
    record.data.credit_information = fixed.flag("data.credit_information")?;
    record.data.deidentification = fixed.word("data.deidentification")?;
    record.purpose = fixed.word("purpose")?;
    record.original_purpose = match fixed.u8("original_purpose")? {
        SAME_PURPOSE => None,
        code => Some(Purpose::from_code(code).ok_or(WireError("original_purpose"))?),
    };
    record.lawful_basis = fixed.word("lawful_basis")?;
    record.consent.state = fixed.word("consent.state")?;
    record.consent.kind = fixed.word("consent.kind")?;
    record.consent.covers_purpose = fixed.flag("consent.covers_purpose")?;
    record.consent.covers_recipient = fixed.flag("consent.covers_recipient")?;
    record.recipient.kind = fixed.word("recipient.kind")?;
    record.export_mechanism = fixed.word("export_mechanism")?;
    record.impact_assessment = fixed.flag("impact_assessment")?;
    record.notice_given = fixed.flag("notice_given")?;
    record.automated_decision = fixed.flag("automated_decision")?;
    record.price_differentiated = fixed.flag("price_differentiated")?;
    let destination = [fixed.u8("destination")?, fixed.u8("destination")?];
    record.destination = CountryCode::new(destination).ok_or(WireError("destination"))?;
    record.data.categories = Categories::from_bits(fixed.u16("data.categories")?)
        .filter(|c| !c.is_empty())
        .ok_or(WireError("data.categories"))?;
    record.data.k = fixed.u32("data.k")?;
    record.retention_days = fixed.u32("retention_days")?;
    record.volume.subjects = fixed.u64("volume.subjects")?;
    record.volume.ytd_export_subjects = fixed.u64("volume.ytd_export_subjects")?;
    record.volume.ytd_export_sensitive_subjects = fixed.u64("volume.ytd_export_sensitive_subjects")?;
    record.report_coverage = f64::from_bits(fixed.u64("report_coverage")?);
    if !(0.0..=1.0).contains(&record.report_coverage) {
        return Err(WireError("report_coverage"));
    }
    let strings = [&mut record.id, &mut record.platform.id, &mut record.recipient.id, &mut record.recipient.licence];
    for (n, (string, name)) in strings.into_iter().zip(StringFields::NAMES).enumerate() {
        if reads.has(n) {
            input.str_into(name, string)?;
        }
    }
    Ok(())
}

/// Reads one record with all its strings.
pub fn decode_record(input: &mut Reader<'_>) -> Result<FlowRecord, WireError> {
    let mut record = blank_record();
    decode_record_into(input, &mut record, StringFields::ALL)?;
    Ok(record)
}

/// A record with every field at its default and empty strings: the scratch
/// space a guest decodes into. Not a valid record by itself (no categories).
pub fn blank_record() -> FlowRecord {
    FlowRecord {
        id: String::new(),
        regime: Regime::default(),
        platform: Platform { id: String::new(), sector: Sector::default(), ciio: false },
        action: Action::default(),
        data: Data {
            categories: Categories::default(),
            dsl_class: DslClass::default(),
            important_notified: false,
            credit_information: false,
            deidentification: Deidentification::default(),
            k: 0,
        },
        purpose: Purpose::default(),
        original_purpose: None,
        lawful_basis: LawfulBasis::default(),
        consent: Consent::default(),
        recipient: Recipient::default(),
        destination: CountryCode::default(),
        volume: Volume::default(),
        export_mechanism: ExportMechanism::default(),
        impact_assessment: false,
        notice_given: false,
        retention_days: 0,
        report_coverage: 1.0,
        automated_decision: false,
        price_differentiated: false,
    }
}

/// Appends the binary form of `answer` to `out`.
pub fn encode_answer(answer: &Answer, out: &mut Vec<u8>) {
    let obligations = answer.obligations();
    out.push(answer.effect().code());
    out.extend_from_slice(&answer.remedies().bits().to_le_bytes());
    out.extend_from_slice(&obligations.kind_bits().to_le_bytes());
    for obligation in obligations.iter() {
        out.extend_from_slice(&obligation.parameter().to_le_bytes());
    }
    out.extend_from_slice(&answer.fired_bits().to_le_bytes());
}

/// Reads one answer, checking every code and that the parts agree with the effect.
pub fn decode_answer(input: &mut Reader<'_>) -> Result<Answer, WireError> {
    decode_answer_translated(input, |_, code| Some(code))
}

/// Reads one answer written in another vocabulary: `to_reader` maps a
/// remedy or obligation code of the writer to the reader's, or to `None`
/// for a word the reader lacks. Such an answer is refused: an answer the
/// reader cannot state in full is not used.
pub fn decode_answer_translated(
    input: &mut Reader<'_>,
    to_reader: impl Fn(Vocabulary, u8) -> Option<u8>,
) -> Result<Answer, WireError> {
    let effect: Effect = input.word("answer effect")?;
    let remedies = translate_bits(input.u16("answer remedies")?, |code| to_reader(Vocabulary::Remedy, code))
        .ok()
        .and_then(RemedySet::from_bits)
        .ok_or(WireError("answer remedies"))?;
    let kinds = input.u16("answer obligations")?;
    let mut obligations = ObligationSet::EMPTY;
    for code in set_bits(kinds) {
        let kind = to_reader(Vocabulary::Obligation, code)
            .and_then(ObligationKind::from_code)
            .ok_or(WireError("answer obligations"))?;
        obligations.insert(Obligation::new(kind, input.u32("answer obligation parameter")?));
    }
    let fired = input.u64("answer rules")?;
    Answer::from_parts(effect, obligations, remedies, fired)
        .map_err(|_| WireError("answer: parts contradict the effect"))
}

/// Appends a batch header for `count` items.
pub fn encode_count(count: usize, out: &mut Vec<u8>) {
    let count = u32::try_from(count).expect("a batch holds fewer than 2^32 items");
    out.extend_from_slice(&count.to_le_bytes());
}

fn encode_str(text: &str, out: &mut Vec<u8>) {
    let len = u32::try_from(text.len()).expect("record strings are bounded");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A cursor over a buffer that checks every read.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Reads a batch header: how many items follow.
    pub fn count(&mut self) -> Result<usize, WireError> {
        Ok(self.u32("batch count")? as usize)
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let (head, rest) = self.bytes.split_first_chunk::<N>().ok_or(WireError(what))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError(what)),
        }
    }

    fn word<W: WireWord>(&mut self, what: &'static str) -> Result<W, WireError> {
        W::from_wire(self.u8(what)?).ok_or(WireError(what))
    }

    fn str_into(&mut self, what: &'static str, out: &mut String) -> Result<(), WireError> {
        let len = self.u32(what)? as usize;
        if len > self.bytes.len() {
            return Err(WireError(what));
        }
        let (text, rest) = self.bytes.split_at(len);
        out.clear();
        out.push_str(std::str::from_utf8(text).map_err(|_| WireError(what))?);
        self.bytes = rest;
        Ok(())
    }
}

/// A vocabulary enum that can be read from its wire code.
trait WireWord: Sized {
    fn from_wire(code: u8) -> Option<Self>;
}

macro_rules! wire_words {
    ($($word:ty),+) => {
        $(impl WireWord for $word {
            fn from_wire(code: u8) -> Option<Self> { <$word>::from_code(code) }
        })+
    };
}

wire_words!(
    Regime,
    Sector,
    Action,
    DslClass,
    Deidentification,
    Purpose,
    LawfulBasis,
    ConsentState,
    ConsentKind,
    RecipientKind,
    ExportMechanism,
    Effect
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::RuleId;

    fn record(json: &str) -> FlowRecord {
        FlowRecord::from_json(json.as_bytes()).unwrap()
    }

    fn encoded(records: &[&FlowRecord]) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_count(records.len(), &mut bytes);
        for record in records {
            encode_record(record, &mut bytes);
        }
        bytes
    }

    #[test]
    fn a_batch_decoded_into_one_scratch_record_round_trips_each_record() {
        let long = "長".repeat(341) + "x"; // 1,024 bytes, mostly three-byte characters
        let big = record(&format!(
            r#"{{"id":"{long}","platform":{{"id":"平台-ü"}},"action":"export","data":{{"categories":["contact","biometric"],"k":4294967295}},
            "purpose":"marketing","original_purpose":"service","recipient":{{"kind":"overseas","id":"收件人","licence":"L-1"}},
            "destination":"SG","volume":{{"subjects":18446744073709551615,"ytd_export_subjects":18446744073709551615,
            "ytd_export_sensitive_subjects":18446744073709551615}},"retention_days":4294967295,"report_coverage":0.25}}"#
        ));
        let small = record(
            r#"{"id":"s","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let bytes = encoded(&[&big, &small, &big]);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.count().unwrap(), 3);
        let mut scratch = blank_record();
        for expected in [&big, &small, &big] {
            decode_record_into(&mut reader, &mut scratch, StringFields::ALL).unwrap();
            // A shorter string after a longer one must not keep the longer one's tail.
            assert_eq!(&scratch, expected);
            assert_eq!(scratch.to_json(), expected.to_json());
        }
        assert!(reader.is_empty());
    }

    #[test]
    fn a_policy_receives_only_the_strings_it_declares() {
        let flow = record(
            r#"{"id":"flow-1","platform":{"id":"p-2"},"action":"share","data":{"categories":["contact"]},
            "purpose":"service","recipient":{"kind":"credit_bureau","id":"bureau-3","licence":"L-4"}}"#,
        );
        let mut full = Vec::new();
        encode_record(&flow, &mut full);
        let reads = StringFields::RECIPIENT_ID | StringFields::RECIPIENT_LICENCE;
        for reads in [StringFields::NONE, StringFields::ID, reads, StringFields::ALL] {
            let mut copy = vec![0; declared_len(&full, reads)];
            copy_declared(&full, reads, &mut copy);
            let mut reader = Reader::new(&copy);
            let mut seen = blank_record();
            decode_record_into(&mut reader, &mut seen, reads).unwrap();
            assert!(reader.is_empty(), "{reads:?} left bytes");
            let strings = [&seen.id, &seen.platform.id, &seen.recipient.id, &seen.recipient.licence];
            let given = [&flow.id, &flow.platform.id, &flow.recipient.id, &flow.recipient.licence];
            for (n, (seen, given)) in strings.into_iter().zip(given).enumerate() {
                assert_eq!(seen.is_empty(), !reads.has(n), "{reads:?}, string {n}");
                if reads.has(n) {
                    assert_eq!(seen, given);
                }
            }
            assert_eq!((seen.action, seen.recipient.kind), (flow.action, flow.recipient.kind));
        }
        assert_eq!(declared_len(&full, StringFields::NONE), FIXED_BYTES);
        let received = as_received(&flow, StringFields::RECIPIENT_ID);
        assert_eq!((received.id.as_str(), received.recipient.id.as_str()), ("", "bureau-3"));
    }

    #[test]
    fn translation_maps_words_by_name_and_refuses_a_missing_one() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["minor","health"]},"purpose":"service"}"#,
        );
        let mut bytes = Vec::new();
        encode_record(&flow, &mut bytes);
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
        bytes.clear();
        encode_record(&minor_only, &mut bytes);
        translate_fixed(&mut bytes[..FIXED_BYTES], without_health).unwrap();
        let moved = decode_record(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(moved.data.categories.bits(), 1 << (Category::Minor.code() - 1));

        let mut answer = Answer::applies();
        answer.deny(RuleId::new(0), &[crate::Remedy::Pseudonymise]);
        let mut encoded = Vec::new();
        encode_answer(&answer, &mut encoded);
        let shifted = |vocabulary, code: u8| (vocabulary == Vocabulary::Remedy).then(|| code - 1);
        let read = decode_answer_translated(&mut Reader::new(&encoded), shifted).unwrap();
        assert_eq!(read.remedies().bits(), 1 << (crate::Remedy::Pseudonymise.code() - 1));
        let lacking = |_, _| None;
        assert_eq!(
            decode_answer_translated(&mut Reader::new(&encoded), lacking).unwrap_err(),
            WireError("answer remedies")
        );
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let mut bytes = Vec::new();
        encode_record(&flow, &mut bytes);
        for cut in 0..bytes.len() {
            assert!(decode_record(&mut Reader::new(&bytes[..cut])).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_record(&mut Reader::new(&bytes)).unwrap(), flow);
    }

    #[test]
    fn codes_outside_the_vocabulary_name_their_field() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let mut bytes = Vec::new();
        encode_record(&flow, &mut bytes);
        bytes[3] = 0xee; // the action's code
        assert_eq!(decode_record(&mut Reader::new(&bytes)).unwrap_err(), WireError("action"));
    }

    #[test]
    fn answers_round_trip_and_contradictions_are_refused() {
        let mut answer = Answer::applies();
        answer.deny(RuleId::new(3), &[crate::Remedy::ObtainConsent]).fire(RuleId::new(63));
        let mut bytes = Vec::new();
        encode_answer(&answer, &mut bytes);
        let decoded = decode_answer(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(decoded.effect(), Effect::Deny);
        assert_eq!(decoded.fired_bits(), answer.fired_bits());
        assert_eq!(decoded.remedies(), answer.remedies());

        // An allow that carries remedies contradicts itself.
        bytes[0] = Effect::Allow.code();
        assert_eq!(
            decode_answer(&mut Reader::new(&bytes)).unwrap_err(),
            WireError("answer: parts contradict the effect")
        );
        bytes[0] = 0xee;
        assert_eq!(decode_answer(&mut Reader::new(&bytes)).unwrap_err(), WireError("answer effect"));
    }
}
