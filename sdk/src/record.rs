//! The flow record: one proposed transfer, access or use of data.
//!
//! Field names, defaults and vocabulary are those of `flow-record.md`. Every
//! default is the conservative one: a missing consent is no consent, a
//! missing impact assessment was not done.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::vocabulary::*;

/// The longest string a record may carry in any field, in bytes.
///
/// Ids, licence numbers and platform names are short; a longer string is a
/// mistake or an attack, and it would otherwise be copied into every policy.
pub const MAX_STRING_BYTES: usize = 1024;

/// One proposed data flow: the question a platform asks.
///
/// Parse one from canonical JSON with [`FlowRecord::from_json`]; the
/// serialised form is the canonical JSON with every field written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRecord {
    /// The caller's id for this flow, echoed in the decision.
    #[serde(deserialize_with = "bounded_string")]
    pub id: String,
    /// Legal regime the flow falls under.
    #[serde(default)]
    pub regime: Regime,
    /// Who proposes the flow.
    #[serde(deserialize_with = "object")]
    pub platform: Platform,
    /// What the platform proposes to do.
    pub action: Action,
    /// What the flow carries.
    #[serde(deserialize_with = "object")]
    pub data: Data,
    /// Why.
    pub purpose: Purpose,
    /// The purpose the data was collected for; `None` means the same as `purpose`.
    /// Read it through [`FlowRecord::original_purpose`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_purpose: Option<Purpose>,
    /// The legal basis relied on.
    #[serde(default)]
    pub lawful_basis: LawfulBasis,
    /// The individual's consent.
    #[serde(default, deserialize_with = "object")]
    pub consent: Consent,
    /// Who receives the data.
    #[serde(default, deserialize_with = "object")]
    pub recipient: Recipient,
    /// Where the data ends up.
    #[serde(default)]
    pub destination: CountryCode,
    /// How many individuals.
    #[serde(default, deserialize_with = "object")]
    pub volume: Volume,
    /// The legal mechanism an export relies on.
    #[serde(default)]
    pub export_mechanism: ExportMechanism,
    /// A personal information impact assessment was done (PIPL Art. 55).
    #[serde(default)]
    pub impact_assessment: bool,
    /// The individual was told (PIPL Art. 17, 30).
    #[serde(default)]
    pub notice_given: bool,
    /// Planned retention in days; 0 = not retained beyond the flow.
    #[serde(default)]
    pub retention_days: u32,
    /// Share of the legally required records that this report includes, in [0, 1].
    #[serde(default = "full_coverage", deserialize_with = "coverage")]
    pub report_coverage: f64,
    /// The use drives an automated decision about individuals.
    #[serde(default)]
    pub automated_decision: bool,
    /// Prices differ by personal traits.
    #[serde(default)]
    pub price_differentiated: bool,
}

/// Who proposes the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// The platform's id, e.g. `alipay`.
    #[serde(deserialize_with = "bounded_string")]
    pub id: String,
    /// Its sector.
    #[serde(default)]
    pub sector: Sector,
    /// Operator of critical information infrastructure.
    #[serde(default)]
    pub ciio: bool,
}

/// What the flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// The categories of data, never empty.
    pub categories: Categories,
    /// Data Security Law class.
    #[serde(default)]
    pub dsl_class: DslClass,
    /// The regulator has notified that this data is important.
    #[serde(default)]
    pub important_notified: bool,
    /// Personal credit information in the sense of the credit reporting rules.
    #[serde(default)]
    pub credit_information: bool,
    /// How far the data has been de-identified.
    #[serde(default)]
    pub deidentification: Deidentification,
    /// Smallest group size when `aggregated`.
    #[serde(default)]
    pub k: u32,
}

/// The individual's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Consent {
    /// Whether it is in force.
    pub state: ConsentState,
    /// The form it took.
    pub kind: ConsentKind,
    /// It covers this flow's purpose.
    pub covers_purpose: bool,
    /// It covers this flow's recipient.
    pub covers_recipient: bool,
}

impl Consent {
    /// Consent is *separate* when its kind is `separate`, `written` or `guardian`.
    pub const fn is_separate(&self) -> bool {
        matches!(self.kind, ConsentKind::Separate | ConsentKind::Written | ConsentKind::Guardian)
    }
}

/// Who receives the data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipient {
    /// The kind of recipient.
    pub kind: RecipientKind,
    /// The recipient's id, e.g. `baihang`.
    #[serde(deserialize_with = "bounded_string")]
    pub id: String,
    /// Its licence number, checked against a regulator's registry.
    #[serde(deserialize_with = "bounded_string")]
    pub licence: String,
}

/// How many individuals the flow and this year's exports concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Volume {
    /// Individuals in this flow.
    pub subjects: u64,
    /// Individuals (non-sensitive) exported since 1 January, this flow included.
    pub ytd_export_subjects: u64,
    /// Individuals whose sensitive data was exported since 1 January, this flow included.
    pub ytd_export_sensitive_subjects: u64,
}

impl FlowRecord {
    /// Parses one record from its canonical JSON form.
    ///
    /// An unknown field, an unknown word, a wrong type or a missing required
    /// field is an error naming the field and what was expected.
    ///
    /// ```
    /// use flowgate_sdk::{FlowRecord, Action};
    /// let flow = FlowRecord::from_json(
    ///     br#"{"id":"f-1","platform":{"id":"p"},"action":"use",
    ///          "data":{"categories":["contact"]},"purpose":"service"}"#,
    /// ).unwrap();
    /// assert_eq!(flow.action, Action::Use);
    /// assert!(flow.is_personal() && !flow.is_sensitive());
    ///
    /// let err = FlowRecord::from_json(br#"{"id":"f-2","platform":{"id":"p"},"action":"sell",
    ///     "data":{"categories":["contact"]},"purpose":"service"}"#).unwrap_err();
    /// assert_eq!(err.field(), "action");
    /// ```
    pub fn from_json(json: &[u8]) -> Result<FlowRecord, RecordError> {
        // serde would also take a struct as an array of its values: a record
        // must be an object, so that every value is named.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(RecordError { field: ".".into(), message: "a record is a JSON object `{...}`".into() });
        }
        // Valid records take the fast path; only a failure is parsed again
        // with path tracking, to name the field.
        if let Ok(record) = serde_json::from_slice(json) {
            return Ok(record);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let record: FlowRecord = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| RecordError::from_path(err.path().to_string(), err.inner()))?;
        deserializer.end().map_err(|err| RecordError::new(".", &err))?;
        Ok(record)
    }

    /// The canonical JSON form, every field written out.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a flow record always serialises")
    }

    /// The purpose the data was collected for (defaults to `purpose`).
    pub fn original_purpose(&self) -> Purpose {
        self.original_purpose.unwrap_or(self.purpose)
    }

    /// Personal data, unless its only category is `non_personal` or it is
    /// `anonymised` (PIPL Art. 4, 73).
    pub fn is_personal(&self) -> bool {
        !self.data.categories.is_only(Category::NonPersonal)
            && self.data.deidentification != Deidentification::Anonymised
    }

    /// Sensitive personal information (PIPL Art. 28): derived from the
    /// categories, never declared.
    pub fn is_sensitive(&self) -> bool {
        self.is_personal() && self.data.categories.intersects(Categories::SENSITIVE)
    }

    /// The destination is outside mainland China.
    pub fn leaves_china(&self) -> bool {
        self.destination != CountryCode::CN
    }
}

/// A record that is not valid: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    field: String,
    message: String,
}

impl RecordError {
    fn new(field: &str, err: &dyn fmt::Display) -> RecordError {
        RecordError { field: field.to_owned(), message: err.to_string() }
    }

    fn from_path(path: String, err: &serde_json::Error) -> RecordError {
        // serde_json appends " at line L column C": the CLI already names the
        // line, and the column of a one-line record helps nobody.
        let mut message = err.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        RecordError { field: path, message }
    }

    /// The dotted path of the offending field (`.` for the record itself).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What was wrong, and what was expected.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == "." { write!(f, "{}", self.message) } else { write!(f, "`{}`: {}", self.field, self.message) }
    }
}

impl std::error::Error for RecordError {}

/// Deserialises a nested struct from a JSON object only: serde would also
/// take an array of its values in order, and a record's values are named.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct ObjectVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
}

fn full_coverage() -> f64 {
    1.0
}

fn coverage<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(de::Error::invalid_value(de::Unexpected::Float(value), &"a share between 0 and 1"))
    }
}

fn bounded_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value.len() > MAX_STRING_BYTES {
        return Err(de::Error::invalid_length(value.len(), &"a string of at most 1024 bytes"));
    }
    Ok(value)
}

/// A set of data categories, stored as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Categories(u16);

impl Categories {
    /// The categories that make a flow sensitive (PIPL Art. 28).
    pub const SENSITIVE: Categories = Categories::of(&[
        Category::Location,
        Category::PaymentAccount,
        Category::LoanRecord,
        Category::CreditScore,
        Category::Income,
        Category::Biometric,
        Category::Health,
        #[cfg(not(feature = "older-vocabulary"))]
        Category::Religion,
        Category::Minor,
    ]);

    /// Every category.
    pub const ALL: Categories = Categories((1 << Category::ALL.len()) - 1);

    /// The set of the given categories.
    pub const fn of(categories: &[Category]) -> Categories {
        let mut bits = 0;
        let mut i = 0;
        while i < categories.len() {
            bits |= 1 << categories[i] as u16;
            i += 1;
        }
        Categories(bits)
    }

    /// The raw bit set (bit `n` is the category with code `n`).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The set for raw bits, if every bit names a category.
    pub const fn from_bits(bits: u16) -> Option<Categories> {
        if bits & !Categories::ALL.0 == 0 { Some(Categories(bits)) } else { None }
    }

    /// Whether `category` is in the set.
    pub const fn contains(self, category: Category) -> bool {
        self.0 & (1 << category as u16) != 0
    }

    /// Whether the two sets share a category.
    pub const fn intersects(self, other: Categories) -> bool {
        self.0 & other.0 != 0
    }

    /// The categories of `self` that are not in `other`.
    pub const fn difference(self, other: Categories) -> Categories {
        Categories(self.0 & !other.0)
    }

    /// Adds a category.
    pub fn insert(&mut self, category: Category) {
        self.0 |= 1 << category as u16;
    }

    /// Whether the set is exactly `{category}`.
    pub const fn is_only(self, category: Category) -> bool {
        self.0 == 1 << category as u16
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The categories, in vocabulary order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.iter().copied().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Category> for Categories {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        let mut set = Categories::default();
        for category in iter {
            set.insert(category);
        }
        set
    }
}

impl Serialize for Categories {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for category in self.iter() {
            seq.serialize_element(&category)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Categories {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CategoriesVisitor;
        impl<'de> Visitor<'de> for CategoriesVisitor {
            type Value = Categories;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-empty list of data categories")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Categories, A::Error> {
                // A repeated category is harmless: the field is a set.
                let mut set = Categories::default();
                while let Some(category) = seq.next_element::<Category>()? {
                    set.insert(category);
                }
                if set.is_empty() {
                    return Err(de::Error::invalid_length(0, &self));
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(CategoriesVisitor)
    }
}

/// An ISO 3166-1 alpha-2 country code, such as `CN` or `SG`.
///
/// Only the form is checked (two upper-case ASCII letters): assigned codes
/// change, and user-assigned ones such as `XK` are in real use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Mainland China, the default destination.
    pub const CN: CountryCode = CountryCode(*b"CN");

    /// The code for two upper-case ASCII letters.
    pub const fn new(code: [u8; 2]) -> Option<CountryCode> {
        if code[0].is_ascii_uppercase() && code[1].is_ascii_uppercase() { Some(CountryCode(code)) } else { None }
    }

    /// The two letters.
    pub const fn bytes(self) -> [u8; 2] {
        self.0
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters, checked at construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl Default for CountryCode {
    fn default() -> Self {
        CountryCode::CN
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let expected = &"an ISO 3166-1 alpha-2 code such as `CN`";
        match text.as_bytes() {
            [a, b] => {
                CountryCode::new([*a, *b]).ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&text), expected))
            }
            _ => Err(de::Error::invalid_value(de::Unexpected::Str(&text), expected)),
        }
    }
}
