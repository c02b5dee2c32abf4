//! The flow record as a policy reads it: a view over the bytes the host
//! wrote, each field read where it lies, when it is asked for.
//!
//! The host encodes every record once ([`crate::wire`]) and copies it into
//! each policy that may apply. Decoding it there into an owned
//! [`FlowRecord`] meant checking and storing all thirty fields in every
//! policy, for every record, when a policy reads four or five of them. A
//! [`FlowView`] reads only what the policy asks for, with the same names
//! and types (`flow.purpose()`, `flow.data().categories()`,
//! `flow.consent().kind()`), so a policy costs its own rules and little more.
//!
//! Every read checks its bytes: a code outside the vocabulary, a flag that is
//! neither 0 nor 1, is never taken for a word. An honest host never writes
//! one; if one arrives anyway the read panics, which in a Wasm guest is a
//! trap the host answers as a fault (a deny). The sizes are checked when
//! the view is made ([`FlowView::new`]), so a view never reads past its record.

use std::fmt;

use crate::record::{Categories, CountryCode, FlowRecord};
use crate::schema::StringFields;
use crate::vocabulary::*;
use crate::wire::{FIXED_BYTES, SAME_PURPOSE, WireError, at, encode_as_received};

/// One proposed data flow, as a policy reads it: a view over its binary
/// form, in which every field is read when it is asked for.
///
/// A policy's [`evaluate`](crate::Policy::evaluate) is handed one for each
/// record. Natively (unit tests, the native side of benchmarks), make one
/// from a [`FlowRecord`] with [`FlowView::of`], or let
/// [`Policy::answer`](crate::Policy::answer) do it.
///
/// ```
/// use flowgate_sdk::{Action, Category, FlowRecord, FlowView, Purpose, StringFields};
///
/// let flow = FlowRecord::from_json(br#"{"id":"f-1","platform":{"id":"meituan"},"action":"use",
///     "data":{"categories":["location","minor"]},"purpose":"personalised_ads"}"#).unwrap();
/// FlowView::of(&flow, StringFields::ALL, |view| {
///     assert_eq!(view.action(), Action::Use);
///     assert_eq!(view.purpose(), Purpose::PersonalisedAds);
///     assert!(view.data().categories().contains(Category::Minor));
///     assert!(view.is_sensitive());
///     assert_eq!(view.platform().id(), "meituan");
/// });
/// // A policy that declares no strings is handed none.
/// FlowView::of(&flow, StringFields::NONE, |view| assert_eq!(view.platform().id(), ""));
/// ```
#[derive(Clone, Copy)]
pub struct FlowView<'a> {
    fixed: &'a [u8; FIXED_BYTES],
    /// The strings in `reads`, each a `u32` length and its bytes, in wire order.
    strings: &'a [u8],
    reads: StringFields,
}

impl<'a> FlowView<'a> {
    /// The record at the start of `bytes`, which carries the strings in
    /// `reads` (in wire order, each a `u32` length and its bytes), and the
    /// bytes after it.
    pub fn split_first(bytes: &'a [u8], reads: StringFields) -> Result<(FlowView<'a>, &'a [u8]), WireError> {
        let (fixed, rest) = bytes.split_first_chunk::<FIXED_BYTES>().ok_or(WireError("record"))?;
        let mut len = 0;
        for (n, name) in StringFields::NAMES.into_iter().enumerate() {
            if reads.has(n) {
                let prefix = rest.get(len..len + 4).ok_or(WireError(name))?;
                let text = u32::from_le_bytes(prefix.try_into().expect("four bytes")) as usize;
                len += 4 + text;
                if len > rest.len() {
                    return Err(WireError(name));
                }
            }
        }
        let (strings, rest) = rest.split_at(len);
        Ok((FlowView { fixed, strings, reads }, rest))
    }

    /// The record that is exactly `bytes`, carrying the strings in `reads`.
    pub fn new(bytes: &'a [u8], reads: StringFields) -> Result<FlowView<'a>, WireError> {
        match FlowView::split_first(bytes, reads)? {
            (view, []) => Ok(view),
            _ => Err(WireError("record: bytes after its last string")),
        }
    }

    /// Calls `f` with a view of `flow` exactly as a policy that reads
    /// `reads` is handed it: encoded, with the other strings left out.
    pub fn of<R>(flow: &FlowRecord, reads: StringFields, f: impl FnOnce(&FlowView<'_>) -> R) -> R {
        let bytes = encode_as_received(flow, reads);
        f(&FlowView::new(&bytes, reads).expect("an encoded record is well formed"))
    }

    /// The caller's id for this flow (empty unless the policy reads [`StringFields::ID`]).
    pub fn id(&self) -> &'a str {
        self.string(0)
    }

    /// Legal regime the flow falls under.
    pub fn regime(&self) -> Regime {
        self.word(at::REGIME, Regime::from_code)
    }

    /// Who proposes the flow.
    pub fn platform(&self) -> PlatformView<'a> {
        PlatformView(*self)
    }

    /// What the platform proposes to do.
    pub fn action(&self) -> Action {
        self.word(at::ACTION, Action::from_code)
    }

    /// What the flow carries.
    pub fn data(&self) -> DataView<'a> {
        DataView(*self)
    }

    /// Why.
    pub fn purpose(&self) -> Purpose {
        self.word(at::PURPOSE, Purpose::from_code)
    }

    /// The purpose the data was collected for (defaults to [`FlowView::purpose`]).
    pub fn original_purpose(&self) -> Purpose {
        self.original_purpose_given().unwrap_or_else(|| self.purpose())
    }

    fn original_purpose_given(&self) -> Option<Purpose> {
        match self.fixed[at::ORIGINAL_PURPOSE] {
            SAME_PURPOSE => None,
            _ => Some(self.word(at::ORIGINAL_PURPOSE, Purpose::from_code)),
        }
    }

    /// The legal basis relied on.
    pub fn lawful_basis(&self) -> LawfulBasis {
        self.word(at::LAWFUL_BASIS, LawfulBasis::from_code)
    }

    /// The individual's consent.
    pub fn consent(&self) -> ConsentView<'a> {
        ConsentView(*self)
    }

    /// Who receives the data.
    pub fn recipient(&self) -> RecipientView<'a> {
        RecipientView(*self)
    }

    /// Where the data ends up.
    pub fn destination(&self) -> CountryCode {
        let code = [self.fixed[at::DESTINATION], self.fixed[at::DESTINATION + 1]];
        CountryCode::new(code).unwrap_or_else(|| malformed("destination"))
    }

    /// How many individuals.
    pub fn volume(&self) -> VolumeView<'a> {
        VolumeView(*self)
    }

    /// The legal mechanism an export relies on.
    pub fn export_mechanism(&self) -> ExportMechanism {
        self.word(at::EXPORT_MECHANISM, ExportMechanism::from_code)
    }

    /// A personal information impact assessment was done (PIPL Art. 55).
    pub fn impact_assessment(&self) -> bool {
        self.flag(at::IMPACT_ASSESSMENT, "impact_assessment")
    }

    /// The individual was told (PIPL Art. 17, 30).
    pub fn notice_given(&self) -> bool {
        self.flag(at::NOTICE_GIVEN, "notice_given")
    }

    /// Planned retention in days; 0 = not retained beyond the flow.
    pub fn retention_days(&self) -> u32 {
        self.u32(at::RETENTION_DAYS)
    }

    /// Share of the legally required records that this report includes, in [0, 1].
    pub fn report_coverage(&self) -> f64 {
        let coverage = f64::from_bits(self.u64(at::REPORT_COVERAGE));
        if (0.0..=1.0).contains(&coverage) { coverage } else { malformed("report_coverage") }
    }

    /// The use drives an automated decision about individuals.
    pub fn automated_decision(&self) -> bool {
        self.flag(at::AUTOMATED_DECISION, "automated_decision")
    }

    /// Prices differ by personal traits.
    pub fn price_differentiated(&self) -> bool {
        self.flag(at::PRICE_DIFFERENTIATED, "price_differentiated")
    }

    /// Personal data, unless its only category is `non_personal` or it is
    /// `anonymised` (PIPL Art. 4, 73).
    pub fn is_personal(&self) -> bool {
        !self.data().categories().is_only(Category::NonPersonal)
            && self.data().deidentification() != Deidentification::Anonymised
    }

    /// Sensitive personal information (PIPL Art. 28): derived from the
    /// categories, never declared.
    pub fn is_sensitive(&self) -> bool {
        self.is_personal() && self.data().categories().intersects(Categories::SENSITIVE)
    }

    /// The destination is outside mainland China.
    pub fn leaves_china(&self) -> bool {
        self.destination() != CountryCode::CN
    }

    /// Every field read into an owned record (the strings the view does
    /// not carry left empty): for tests and for showing a record.
    pub fn to_flow_record(&self) -> FlowRecord {
        let (data, consent, platform, recipient, volume) =
            (self.data(), self.consent(), self.platform(), self.recipient(), self.volume());
        FlowRecord {
            id: self.id().to_owned(),
            regime: self.regime(),
            platform: crate::Platform {
                id: platform.id().to_owned(),
                sector: platform.sector(),
                ciio: platform.ciio(),
            },
            action: self.action(),
            data: crate::Data {
                categories: data.categories(),
                dsl_class: data.dsl_class(),
                important_notified: data.important_notified(),
                credit_information: data.credit_information(),
                deidentification: data.deidentification(),
                k: data.k(),
            },
            purpose: self.purpose(),
            original_purpose: self.original_purpose_given(),
            lawful_basis: self.lawful_basis(),
            consent: crate::Consent {
                state: consent.state(),
                kind: consent.kind(),
                covers_purpose: consent.covers_purpose(),
                covers_recipient: consent.covers_recipient(),
            },
            recipient: crate::Recipient {
                kind: recipient.kind(),
                id: recipient.id().to_owned(),
                licence: recipient.licence().to_owned(),
            },
            destination: self.destination(),
            volume: crate::Volume {
                subjects: volume.subjects(),
                ytd_export_subjects: volume.ytd_export_subjects(),
                ytd_export_sensitive_subjects: volume.ytd_export_sensitive_subjects(),
            },
            export_mechanism: self.export_mechanism(),
            impact_assessment: self.impact_assessment(),
            notice_given: self.notice_given(),
            retention_days: self.retention_days(),
            report_coverage: self.report_coverage(),
            automated_decision: self.automated_decision(),
            price_differentiated: self.price_differentiated(),
        }
    }

    fn word<W>(&self, at: usize, from_code: impl Fn(u8) -> Option<W>) -> W {
        from_code(self.fixed[at]).unwrap_or_else(|| malformed(field_at(at)))
    }

    fn flag(&self, at: usize, field: &'static str) -> bool {
        match self.fixed[at] {
            0 => false,
            1 => true,
            _ => malformed(field),
        }
    }

    fn u32(&self, at: usize) -> u32 {
        let bytes = &self.fixed[at..at + 4];
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.fixed[at..at + 8].try_into().expect("eight bytes"))
    }

    /// The `n`-th string field (in wire order), empty when not carried.
    fn string(&self, n: usize) -> &'a str {
        if !self.reads.has(n) {
            return "";
        }
        let mut rest = self.strings;
        for m in 0..=n {
            if !self.reads.has(m) {
                continue;
            }
            // Lengths were checked when the view was made.
            let (prefix, after) = rest.split_first_chunk::<4>().expect("checked");
            let (text, after) = after.split_at(u32::from_le_bytes(*prefix) as usize);
            if m == n {
                return std::str::from_utf8(text).unwrap_or_else(|_| malformed(StringFields::NAMES[n]));
            }
            rest = after;
        }
        unreachable!("the loop returns at `n`")
    }
}

/// The field at an offset of the fixed block, for a message.
fn field_at(offset: usize) -> &'static str {
    match offset {
        at::REGIME => "regime",
        at::SECTOR => "platform.sector",
        at::ACTION => "action",
        at::DSL_CLASS => "data.dsl_class",
        at::DEIDENTIFICATION => "data.deidentification",
        at::PURPOSE => "purpose",
        at::ORIGINAL_PURPOSE => "original_purpose",
        at::LAWFUL_BASIS => "lawful_basis",
        at::CONSENT_STATE => "consent.state",
        at::CONSENT_KIND => "consent.kind",
        at::RECIPIENT_KIND => "recipient.kind",
        at::EXPORT_MECHANISM => "export_mechanism",
        _ => "record",
    }
}

/// A field no honest host writes: in a guest, a trap the host answers as a fault.
#[cold]
#[track_caller]
fn malformed(field: &str) -> ! {
    panic!("malformed record: `{field}` holds no valid value")
}

/// The bytes, not the fields: a view may hold a byte no field reading takes.
impl fmt::Debug for FlowView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowView")
            .field("fixed", &&self.fixed[..])
            .field("strings", &self.strings)
            .field("reads", &self.reads)
            .finish()
    }
}

/// Who proposes the flow ([`FlowView::platform`]).
#[derive(Debug, Clone, Copy)]
pub struct PlatformView<'a>(FlowView<'a>);

impl<'a> PlatformView<'a> {
    /// The platform's id, e.g. `alipay` (empty unless the policy reads
    /// [`StringFields::PLATFORM_ID`]).
    pub fn id(&self) -> &'a str {
        self.0.string(1)
    }

    /// Its sector.
    pub fn sector(&self) -> Sector {
        self.0.word(at::SECTOR, Sector::from_code)
    }

    /// Operator of critical information infrastructure.
    pub fn ciio(&self) -> bool {
        self.0.flag(at::CIIO, "platform.ciio")
    }
}

/// What the flow carries ([`FlowView::data`]).
#[derive(Debug, Clone, Copy)]
pub struct DataView<'a>(FlowView<'a>);

impl DataView<'_> {
    /// The categories of data, never empty.
    pub fn categories(&self) -> Categories {
        let bits = u16::from_le_bytes([self.0.fixed[at::CATEGORIES], self.0.fixed[at::CATEGORIES + 1]]);
        Categories::from_bits(bits).filter(|c| !c.is_empty()).unwrap_or_else(|| malformed("data.categories"))
    }

    /// Data Security Law class.
    pub fn dsl_class(&self) -> DslClass {
        self.0.word(at::DSL_CLASS, DslClass::from_code)
    }

    /// The regulator has notified that this data is important.
    pub fn important_notified(&self) -> bool {
        self.0.flag(at::IMPORTANT_NOTIFIED, "data.important_notified")
    }

    /// Personal credit information in the sense of the credit reporting rules.
    pub fn credit_information(&self) -> bool {
        self.0.flag(at::CREDIT_INFORMATION, "data.credit_information")
    }

    /// How far the data has been de-identified.
    pub fn deidentification(&self) -> Deidentification {
        self.0.word(at::DEIDENTIFICATION, Deidentification::from_code)
    }

    /// Smallest group size when `aggregated`.
    pub fn k(&self) -> u32 {
        self.0.u32(at::K)
    }
}

/// The individual's consent ([`FlowView::consent`]).
#[derive(Debug, Clone, Copy)]
pub struct ConsentView<'a>(FlowView<'a>);

impl ConsentView<'_> {
    /// Whether it is in force.
    pub fn state(&self) -> ConsentState {
        self.0.word(at::CONSENT_STATE, ConsentState::from_code)
    }

    /// The form it took.
    pub fn kind(&self) -> ConsentKind {
        self.0.word(at::CONSENT_KIND, ConsentKind::from_code)
    }

    /// It covers this flow's purpose.
    pub fn covers_purpose(&self) -> bool {
        self.0.flag(at::COVERS_PURPOSE, "consent.covers_purpose")
    }

    /// It covers this flow's recipient.
    pub fn covers_recipient(&self) -> bool {
        self.0.flag(at::COVERS_RECIPIENT, "consent.covers_recipient")
    }

    /// Consent is *separate* when its kind is `separate`, `written` or `guardian`.
    pub fn is_separate(&self) -> bool {
        matches!(self.kind(), ConsentKind::Separate | ConsentKind::Written | ConsentKind::Guardian)
    }
}

/// Who receives the data ([`FlowView::recipient`]).
#[derive(Debug, Clone, Copy)]
pub struct RecipientView<'a>(FlowView<'a>);

impl<'a> RecipientView<'a> {
    /// The kind of recipient.
    pub fn kind(&self) -> RecipientKind {
        self.0.word(at::RECIPIENT_KIND, RecipientKind::from_code)
    }

    /// The recipient's id, e.g. `baihang` (empty unless the policy reads
    /// [`StringFields::RECIPIENT_ID`]).
    pub fn id(&self) -> &'a str {
        self.0.string(2)
    }

    /// Its licence number (empty unless the policy reads
    /// [`StringFields::RECIPIENT_LICENCE`]).
    pub fn licence(&self) -> &'a str {
        self.0.string(3)
    }
}

/// How many individuals the flow and this year's exports concern ([`FlowView::volume`]).
#[derive(Debug, Clone, Copy)]
pub struct VolumeView<'a>(FlowView<'a>);

impl VolumeView<'_> {
    /// Individuals in this flow.
    pub fn subjects(&self) -> u64 {
        self.0.u64(at::SUBJECTS)
    }

    /// Individuals (non-sensitive) exported since 1 January, this flow included.
    pub fn ytd_export_subjects(&self) -> u64 {
        self.0.u64(at::YTD_EXPORT_SUBJECTS)
    }

    /// Individuals whose sensitive data was exported since 1 January, this flow included.
    pub fn ytd_export_sensitive_subjects(&self) -> u64 {
        self.0.u64(at::YTD_EXPORT_SENSITIVE_SUBJECTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode_record;

    fn record(json: &str) -> FlowRecord {
        FlowRecord::from_json(json.as_bytes()).unwrap()
    }

    fn encoded(flows: &[&FlowRecord]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for flow in flows {
            encode_record(flow, &mut bytes);
        }
        bytes
    }

    #[test]
    fn views_of_a_batch_read_back_each_record() {
        let long = "長".repeat(341) + "x"; // 1,024 bytes, mostly three-byte characters
        let big = record(&format!(
            r#"{{"id":"{long}","platform":{{"id":"平台-ü","sector":"payments","ciio":true}},"action":"export",
            "data":{{"categories":["contact","biometric"],"k":4294967295,"dsl_class":"important",
            "important_notified":true,"credit_information":true,"deidentification":"aggregated"}},
            "purpose":"marketing","original_purpose":"service","lawful_basis":"consent",
            "consent":{{"state":"given","kind":"written","covers_purpose":true,"covers_recipient":true}},
            "recipient":{{"kind":"overseas","id":"收件人","licence":"L-1"}},"export_mechanism":"standard_contract",
            "destination":"SG","volume":{{"subjects":18446744073709551615,"ytd_export_subjects":18446744073709551614,
            "ytd_export_sensitive_subjects":18446744073709551613}},"retention_days":4294967295,"report_coverage":0.25,
            "impact_assessment":true,"notice_given":true,"automated_decision":true,"price_differentiated":true}}"#
        ));
        let small = record(
            r#"{"id":"s","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let bytes = encoded(&[&big, &small, &big]);
        let mut rest = &bytes[..];
        for expected in [&big, &small, &big] {
            let (view, after) = FlowView::split_first(rest, StringFields::ALL).unwrap();
            assert_eq!(&view.to_flow_record(), expected);
            assert_eq!(view.to_flow_record().to_json(), expected.to_json());
            assert_eq!(view.original_purpose(), expected.original_purpose());
            assert_eq!(
                (view.is_personal(), view.is_sensitive(), view.leaves_china()),
                (expected.is_personal(), expected.is_sensitive(), expected.leaves_china())
            );
            assert_eq!(view.consent().is_separate(), expected.consent.is_separate());
            rest = after;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let bytes = encoded(&[&flow]);
        for cut in 0..bytes.len() {
            assert!(FlowView::new(&bytes[..cut], StringFields::ALL).is_err(), "cut at {cut}");
        }
        assert!(FlowView::new(&bytes, StringFields::NONE).is_err(), "strings the policy does not read");
        assert_eq!(FlowView::new(&bytes[..FIXED_BYTES], StringFields::NONE).unwrap().action(), Action::Use);
    }

    #[test]
    #[should_panic(expected = "`action` holds no valid value")]
    fn a_code_outside_the_vocabulary_is_never_read_as_a_word() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let mut bytes = encoded(&[&flow]);
        bytes[at::ACTION] = 0xee;
        let view = FlowView::new(&bytes, StringFields::ALL).unwrap();
        assert_eq!(view.purpose(), Purpose::Service, "the other fields read as ever");
        let _ = view.action();
    }

    #[test]
    #[should_panic(expected = "`impact_assessment` holds no valid value")]
    fn a_flag_is_zero_or_one() {
        let flow = record(
            r#"{"id":"t","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#,
        );
        let mut bytes = encoded(&[&flow]);
        bytes[at::IMPACT_ASSESSMENT] = 2;
        let _ = FlowView::new(&bytes, StringFields::ALL).unwrap().impact_assessment();
    }
}
