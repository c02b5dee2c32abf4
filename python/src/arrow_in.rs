//! Arrow columns to flow records, row by row, with no Python object per row.
//!
//! A batch's columns are bound once to the record's fields by name (nested
//! groups as structs, as `pyarrow.json.read_json` reads our JSON Lines);
//! each row is then read straight into a `FlowRecord` through typed arrays.
//! The record is the same one `FlowRecord::from_json` would give for the
//! JSON line the row came from, because every value is checked as the
//! SDK's parser checks it (words as the SDK's vocabulary spells them, numbers
//! to the field's type, strings to 1,024 bytes, a non-empty category set).
//!
//! A row the fast path cannot read (a wrong column type, a bad word, a
//! number out of range, a null where a value is required, an unknown
//! column with a value) is written out as the JSON object it stands for
//! and parsed by the SDK: the error is then exactly the field-level message
//! `flowgate check` prints for that line, and one bad row never fails the
//! batch. Should the SDK accept what the fast path refused, its record is
//! used: the fast path may only be stricter, never more lenient.
//!
//! Flowgate's decisions where the issue is silent:
//! - A null is a value left out: it takes the field's default, or is a
//!   missing field if the field is required (JSON Lines read by
//!   `read_json` give nulls wherever a line left a field out).
//! - A column the record does not have is an unknown field in the rows
//!   where it holds a value, and nothing where it is null.
//! - Any integer type (or a decimal of scale 0) may hold a whole-number
//!   field, checked against the field's range (u32 or u64); a float column
//!   may not (`1.0` is an error in JSON too). `report_coverage` takes
//!   floats, integers and decimals.
//! - Strings may be `utf8`, `large_utf8`, `utf8_view` or dictionaries of
//!   them; lists `list`, `large_list` or `fixed_size_list`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};

use flowgate::sdk::{
    Action, Categories, Category, Consent, ConsentKind, ConsentState, CountryCode, Data, Deidentification, DslClass,
    ExportMechanism, FlowRecord, LawfulBasis, MAX_STRING_BYTES, Platform, Purpose, Recipient, RecipientKind, Regime,
    Sector, Volume,
};

/// What a field holds, for the published schema and for error messages.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Word,
    Country,
    Bool,
    U32,
    U64,
    Share,
    Categories,
    Group(&'static [Spec]),
}

/// One field of the flow record, in the SDK's order.
struct Spec {
    name: &'static str,
    kind: Kind,
}

const fn spec(name: &'static str, kind: Kind) -> Spec {
    Spec { name, kind }
}

const PLATFORM: &[Spec] = &[spec("id", Kind::Text), spec("sector", Kind::Word), spec("ciio", Kind::Bool)];
const DATA: &[Spec] = &[
    spec("categories", Kind::Categories),
    spec("dsl_class", Kind::Word),
    spec("important_notified", Kind::Bool),
    spec("credit_information", Kind::Bool),
    spec("deidentification", Kind::Word),
    spec("k", Kind::U32),
];
const CONSENT: &[Spec] = &[
    spec("state", Kind::Word),
    spec("kind", Kind::Word),
    spec("covers_purpose", Kind::Bool),
    spec("covers_recipient", Kind::Bool),
];
const RECIPIENT: &[Spec] = &[spec("kind", Kind::Word), spec("id", Kind::Text), spec("licence", Kind::Text)];
const VOLUME: &[Spec] = &[
    spec("subjects", Kind::U64),
    spec("ytd_export_subjects", Kind::U64),
    spec("ytd_export_sensitive_subjects", Kind::U64),
];
/// The flow record of `docs/flow-record.md`, field by field.
const RECORD: &[Spec] = &[
    spec("id", Kind::Text),
    spec("regime", Kind::Word),
    spec("platform", Kind::Group(PLATFORM)),
    spec("action", Kind::Word),
    spec("data", Kind::Group(DATA)),
    spec("purpose", Kind::Word),
    spec("original_purpose", Kind::Word),
    spec("lawful_basis", Kind::Word),
    spec("consent", Kind::Group(CONSENT)),
    spec("recipient", Kind::Group(RECIPIENT)),
    spec("destination", Kind::Country),
    spec("volume", Kind::Group(VOLUME)),
    spec("export_mechanism", Kind::Word),
    spec("impact_assessment", Kind::Bool),
    spec("notice_given", Kind::Bool),
    spec("retention_days", Kind::U32),
    spec("report_coverage", Kind::Share),
    spec("automated_decision", Kind::Bool),
    spec("price_differentiated", Kind::Bool),
];

/// Positions in [`RECORD`] and the groups, read by the fast path.
mod at {
    pub const ID: usize = 0;
    pub const REGIME: usize = 1;
    pub const PLATFORM: usize = 2;
    pub const ACTION: usize = 3;
    pub const DATA: usize = 4;
    pub const PURPOSE: usize = 5;
    pub const ORIGINAL_PURPOSE: usize = 6;
    pub const LAWFUL_BASIS: usize = 7;
    pub const CONSENT: usize = 8;
    pub const RECIPIENT: usize = 9;
    pub const DESTINATION: usize = 10;
    pub const VOLUME: usize = 11;
    pub const EXPORT_MECHANISM: usize = 12;
    pub const IMPACT_ASSESSMENT: usize = 13;
    pub const NOTICE_GIVEN: usize = 14;
    pub const RETENTION_DAYS: usize = 15;
    pub const REPORT_COVERAGE: usize = 16;
    pub const AUTOMATED_DECISION: usize = 17;
    pub const PRICE_DIFFERENTIATED: usize = 18;
}

/// The schema of a flow record in Arrow, as `pyarrow.json.read_json` reads
/// full records: strings and words `utf8`, whole numbers `int64`,
/// `report_coverage` `float64`, groups structs, categories a list. Every
/// field is nullable: a null is a value left out.
pub(crate) fn flow_schema() -> Schema {
    Schema::new(fields(RECORD))
}

fn fields(specs: &[Spec]) -> Fields {
    specs.iter().map(|spec| Field::new(spec.name, data_type(spec.kind), true)).collect()
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::Word | Kind::Country => DataType::Utf8,
        Kind::Bool => DataType::Boolean,
        Kind::U32 | Kind::U64 => DataType::Int64,
        Kind::Share => DataType::Float64,
        Kind::Categories => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Kind::Group(specs) => DataType::Struct(fields(specs)),
    }
}

/// What a field of this kind expects, in the words serde uses.
fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Word | Kind::Country => "a string",
        Kind::Bool => "a boolean",
        Kind::U32 => "u32",
        Kind::U64 => "u64",
        Kind::Share => "a share between 0 and 1",
        Kind::Categories => "a non-empty list of data categories",
        Kind::Group(_) => "an object",
    }
}

/// A row the fast path does not read: the SDK reads its JSON instead.
struct Slow;

type Read<T> = Result<Option<T>, Slow>;

/// One column bound to a field: how to read it, and where it is null.
struct Column<'a> {
    nulls: Option<NullBuffer>,
    values: Values<'a>,
}

enum Values<'a> {
    /// No such column: every row leaves the field out.
    Missing,
    Text(Text<'a>),
    Bool(&'a BooleanArray),
    Int(Box<dyn Fn(usize) -> i128 + Send + Sync + 'a>),
    Float(Box<dyn Fn(usize) -> f64 + Send + Sync + 'a>),
    List(List<'a>),
    Group(Group<'a>),
    /// A column of a type the field cannot take: rows with a value are read by the SDK.
    Other,
}

/// Strings, whatever their Arrow layout (a match, not a call through a
/// pointer, for the common layouts: this is read for every word of every row).
enum Text<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    Other(Box<dyn Fn(usize) -> &'a str + Send + Sync + 'a>),
}

impl<'a> Text<'a> {
    fn get(&self, row: usize) -> &'a str {
        match self {
            Text::Utf8(strings) => strings.value(row),
            Text::Large(strings) => strings.value(row),
            Text::Other(read) => read(row),
        }
    }
}

/// A list column's rows, as ranges into its values.
struct List<'a> {
    range: Box<dyn Fn(usize) -> (usize, usize) + Send + Sync + 'a>,
    values: Box<Column<'a>>,
}

/// A struct column (or the batch itself) bound to a group's fields.
struct Group<'a> {
    columns: Vec<Column<'a>>,
    /// Columns that are no field of the group (or a field given twice).
    unknown: Vec<Option<NullBuffer>>,
}

impl Column<'_> {
    fn is_valid(&self, row: usize) -> bool {
        !matches!(self.values, Values::Missing) && self.nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row))
    }
}

fn bind<'a>(array: &'a ArrayRef, kind: Kind) -> Column<'a> {
    let nulls = array.logical_nulls();
    let values = match kind {
        Kind::Group(specs) => match array.as_struct_opt() {
            Some(structs) => {
                Values::Group(bind_group(structs.column_names().into_iter().zip(structs.columns()), specs))
            }
            None => Values::Other,
        },
        Kind::Categories => list(array).unwrap_or(Values::Other),
        Kind::Text | Kind::Word | Kind::Country => text(array).map_or(Values::Other, Values::Text),
        Kind::Bool => array.as_boolean_opt().map_or(Values::Other, Values::Bool),
        Kind::U32 | Kind::U64 => int(array).unwrap_or(Values::Other),
        Kind::Share => float(array).or_else(|| int(array)).unwrap_or(Values::Other),
    };
    if array.data_type() == &DataType::Null {
        return Column { nulls, values: Values::Missing };
    }
    Column { nulls, values }
}

fn bind_group<'a>(columns: impl Iterator<Item = (&'a str, &'a ArrayRef)>, specs: &'static [Spec]) -> Group<'a> {
    let mut bound: Vec<Option<Column<'a>>> = specs.iter().map(|_| None).collect();
    let mut unknown = Vec::new();
    for (name, array) in columns {
        match specs.iter().position(|spec| spec.name == name) {
            Some(at) if bound[at].is_none() => bound[at] = Some(bind(array, specs[at].kind)),
            _ => unknown.push(array.logical_nulls().or_else(|| Some(NullBuffer::new_valid(array.len())))),
        }
    }
    // A null-typed unknown column holds no value anywhere.
    let columns = bound.into_iter().map(|c| c.unwrap_or(Column { nulls: None, values: Values::Missing })).collect();
    Group { columns, unknown }
}

fn text<'a>(array: &'a ArrayRef) -> Option<Text<'a>> {
    let read: Box<dyn Fn(usize) -> &'a str + Send + Sync + 'a> = match array.data_type() {
        DataType::Utf8 => return Some(Text::Utf8(array.as_string::<i32>())),
        DataType::LargeUtf8 => return Some(Text::Large(array.as_string::<i64>())),
        DataType::Utf8View => {
            let strings = array.as_string_view();
            Box::new(move |row| strings.value(row))
        }
        DataType::Dictionary(_, value)
            if matches!(**value, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
        {
            let dictionary = array.as_any_dictionary();
            let keys = dictionary.normalized_keys();
            let values = text(dictionary.values())?;
            Box::new(move |row| values.get(keys[row]))
        }
        _ => return None,
    };
    Some(Text::Other(read))
}

fn int(array: &ArrayRef) -> Option<Values<'_>> {
    macro_rules! primitive {
        ($type:ty) => {{
            let values = array.as_primitive::<$type>();
            Box::new(move |row| i128::from(values.value(row)))
        }};
    }
    let read: Box<dyn Fn(usize) -> i128 + Send + Sync> = match array.data_type() {
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        // Spark reads Parquet's unsigned 64-bit integers as decimal(20, 0).
        DataType::Decimal128(_, 0) => primitive!(Decimal128Type),
        _ => return None,
    };
    Some(Values::Int(read))
}

fn float(array: &ArrayRef) -> Option<Values<'_>> {
    let read: Box<dyn Fn(usize) -> f64 + Send + Sync> = match array.data_type() {
        DataType::Float16 => {
            let values = array.as_primitive::<Float16Type>();
            Box::new(move |row| f64::from(values.value(row)))
        }
        DataType::Float32 => {
            let values = array.as_primitive::<Float32Type>();
            Box::new(move |row| f64::from(values.value(row)))
        }
        DataType::Float64 => {
            let values = array.as_primitive::<Float64Type>();
            Box::new(move |row| values.value(row))
        }
        // Exact when both parts are (below 2^53): the quotient of two
        // exact doubles is rounded once, as parsing the decimal text is.
        DataType::Decimal128(_, scale @ 1..=22) => {
            let values = array.as_primitive::<Decimal128Type>();
            let divisor = 10f64.powi(i32::from(*scale));
            Box::new(move |row| {
                let value = values.value(row);
                if value.unsigned_abs() < 1 << 53 { value as f64 / divisor } else { f64::NAN }
            })
        }
        _ => return None,
    };
    Some(Values::Float(read))
}

fn list(array: &ArrayRef) -> Option<Values<'_>> {
    let (range, values): (Box<dyn Fn(usize) -> (usize, usize) + Send + Sync>, &ArrayRef) = match array.data_type() {
        DataType::List(_) => {
            let lists = array.as_list::<i32>();
            let offsets = lists.value_offsets();
            (Box::new(move |row| (offsets[row] as usize, offsets[row + 1] as usize)), lists.values())
        }
        DataType::LargeList(_) => {
            let lists = array.as_list::<i64>();
            let offsets = lists.value_offsets();
            (Box::new(move |row| (offsets[row] as usize, offsets[row + 1] as usize)), lists.values())
        }
        DataType::FixedSizeList(_, size) => {
            let lists = array.as_fixed_size_list();
            let size = *size as usize;
            (Box::new(move |row| (row * size, row * size + size)), lists.values())
        }
        _ => return None,
    };
    let values = Box::new(bind(values, Kind::Word));
    Some(Values::List(List { range, values }))
}

impl<'a> Column<'a> {
    fn text(&self, row: usize) -> Read<&'a str> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        match &self.values {
            Values::Text(text) => Ok(Some(text.get(row))),
            _ => Err(Slow),
        }
    }

    fn string(&self, row: usize) -> Read<String> {
        match self.text(row)? {
            Some(text) if text.len() <= MAX_STRING_BYTES => Ok(Some(text.to_owned())),
            Some(_) => Err(Slow),
            None => Ok(None),
        }
    }

    fn word<T: Word>(&self, row: usize) -> Read<T> {
        self.text(row)?.map(|text| word(text)).transpose()
    }

    fn bool(&self, row: usize) -> Read<bool> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        match &self.values {
            Values::Bool(values) => Ok(Some(values.value(row))),
            _ => Err(Slow),
        }
    }

    fn int(&self, row: usize) -> Read<i128> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        match &self.values {
            Values::Int(read) => Ok(Some(read(row))),
            _ => Err(Slow),
        }
    }

    fn u32(&self, row: usize) -> Read<u32> {
        self.int(row)?.map(|value| u32::try_from(value).map_err(|_| Slow)).transpose()
    }

    fn u64(&self, row: usize) -> Read<u64> {
        self.int(row)?.map(|value| u64::try_from(value).map_err(|_| Slow)).transpose()
    }

    fn share(&self, row: usize) -> Read<f64> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        let value = match &self.values {
            Values::Float(read) => read(row),
            // As JSON takes `1` for a number: an integer, converted as serde_json converts it.
            Values::Int(read) => match (i64::try_from(read(row)), u64::try_from(read(row))) {
                (Ok(value), _) => value as f64,
                (_, Ok(value)) => value as f64,
                _ => return Err(Slow),
            },
            _ => return Err(Slow),
        };
        if (0.0..=1.0).contains(&value) { Ok(Some(value)) } else { Err(Slow) }
    }

    fn country(&self, row: usize) -> Read<CountryCode> {
        match self.text(row)?.map(str::as_bytes) {
            Some(&[a, b]) => CountryCode::new([a, b]).map(Some).ok_or(Slow),
            Some(_) => Err(Slow),
            None => Ok(None),
        }
    }

    fn categories(&self, row: usize) -> Read<Categories> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        let Values::List(List { range, values }) = &self.values else { return Err(Slow) };
        let (start, end) = range(row);
        let mut set = Categories::default();
        for at in start..end {
            set.insert(values.word::<Category>(at)?.ok_or(Slow)?);
        }
        if set.is_empty() { Err(Slow) } else { Ok(Some(set)) }
    }

    /// The group's columns at `row`, `None` if the group is left out there.
    fn group(&self, row: usize) -> Read<&Group<'a>> {
        if !self.is_valid(row) {
            return Ok(None);
        }
        match &self.values {
            Values::Group(group) if group.known_only(row) => Ok(Some(group)),
            _ => Err(Slow),
        }
    }
}

impl Group<'_> {
    fn known_only(&self, row: usize) -> bool {
        self.unknown.iter().all(|nulls| nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)))
    }
}

/// A vocabulary of the record: its words as the SDK spells them (`ALL`
/// and `as_str` come from the same declaration as its serde names).
trait Word: Copy + 'static {
    fn all() -> &'static [Self];
    fn text(self) -> &'static str;
}

macro_rules! words {
    ($($vocabulary:ty),+) => {$(
        impl Word for $vocabulary {
            fn all() -> &'static [Self] {
                <$vocabulary>::ALL
            }
            fn text(self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

words!(
    Regime,
    Sector,
    Action,
    Category,
    DslClass,
    Deidentification,
    Purpose,
    LawfulBasis,
    ConsentState,
    ConsentKind,
    RecipientKind,
    ExportMechanism
);

/// A word of a vocabulary: a handful of comparisons (most fail on the
/// length), where going through serde cost a third of reading a row.
fn word<T: Word>(text: &str) -> Result<T, Slow> {
    T::all().iter().copied().find(|word| word.text() == text).ok_or(Slow)
}

/// The rows of one batch, bound to the record's fields.
pub(crate) struct Rows<'a> {
    batch: &'a RecordBatch,
    record: Group<'a>,
}

impl<'a> Rows<'a> {
    /// Binds the batch's columns to the record's fields, by name.
    pub(crate) fn bind(batch: &'a RecordBatch) -> Rows<'a> {
        let names = batch.schema_ref().fields().iter().map(|field| field.name().as_str());
        let record = bind_group(names.zip(batch.columns()), RECORD);
        Rows { batch, record }
    }

    /// The record in `row`, or the field-level message `flowgate check`
    /// prints for the JSON line it stands for.
    pub(crate) fn record(&self, row: usize) -> Result<FlowRecord, String> {
        self.fast(row).or_else(|Slow| slow(self.batch, row))
    }

    /// The row's `id`, when it holds a string (an invalid row's too).
    pub(crate) fn id(&self, row: usize) -> Option<&'a str> {
        self.record.columns[at::ID].text(row).ok().flatten()
    }

    fn fast(&self, row: usize) -> Result<FlowRecord, Slow> {
        let top = &self.record;
        if !top.known_only(row) {
            return Err(Slow);
        }
        let c = &top.columns;
        let platform = c[at::PLATFORM].group(row)?.ok_or(Slow)?;
        let data = c[at::DATA].group(row)?.ok_or(Slow)?;
        let consent = c[at::CONSENT].group(row)?;
        let recipient = c[at::RECIPIENT].group(row)?;
        let volume = c[at::VOLUME].group(row)?;
        Ok(FlowRecord {
            id: c[at::ID].string(row)?.ok_or(Slow)?,
            regime: c[at::REGIME].word(row)?.unwrap_or_default(),
            platform: Platform {
                id: platform.columns[0].string(row)?.ok_or(Slow)?,
                sector: platform.columns[1].word(row)?.unwrap_or_default(),
                ciio: platform.columns[2].bool(row)?.unwrap_or_default(),
            },
            action: c[at::ACTION].word(row)?.ok_or(Slow)?,
            data: Data {
                categories: data.columns[0].categories(row)?.ok_or(Slow)?,
                dsl_class: data.columns[1].word(row)?.unwrap_or_default(),
                important_notified: data.columns[2].bool(row)?.unwrap_or_default(),
                credit_information: data.columns[3].bool(row)?.unwrap_or_default(),
                deidentification: data.columns[4].word(row)?.unwrap_or_default(),
                k: data.columns[5].u32(row)?.unwrap_or_default(),
            },
            purpose: c[at::PURPOSE].word(row)?.ok_or(Slow)?,
            original_purpose: c[at::ORIGINAL_PURPOSE].word(row)?,
            lawful_basis: c[at::LAWFUL_BASIS].word(row)?.unwrap_or_default(),
            consent: match consent {
                None => Consent::default(),
                Some(consent) => Consent {
                    state: consent.columns[0].word(row)?.unwrap_or_default(),
                    kind: consent.columns[1].word(row)?.unwrap_or_default(),
                    covers_purpose: consent.columns[2].bool(row)?.unwrap_or_default(),
                    covers_recipient: consent.columns[3].bool(row)?.unwrap_or_default(),
                },
            },
            recipient: match recipient {
                None => Recipient::default(),
                Some(recipient) => Recipient {
                    kind: recipient.columns[0].word(row)?.unwrap_or_default(),
                    id: recipient.columns[1].string(row)?.unwrap_or_default(),
                    licence: recipient.columns[2].string(row)?.unwrap_or_default(),
                },
            },
            destination: c[at::DESTINATION].country(row)?.unwrap_or_default(),
            volume: match volume {
                None => Volume::default(),
                Some(volume) => Volume {
                    subjects: volume.columns[0].u64(row)?.unwrap_or_default(),
                    ytd_export_subjects: volume.columns[1].u64(row)?.unwrap_or_default(),
                    ytd_export_sensitive_subjects: volume.columns[2].u64(row)?.unwrap_or_default(),
                },
            },
            export_mechanism: c[at::EXPORT_MECHANISM].word(row)?.unwrap_or_default(),
            impact_assessment: c[at::IMPACT_ASSESSMENT].bool(row)?.unwrap_or_default(),
            notice_given: c[at::NOTICE_GIVEN].bool(row)?.unwrap_or_default(),
            retention_days: c[at::RETENTION_DAYS].u32(row)?.unwrap_or_default(),
            report_coverage: c[at::REPORT_COVERAGE].share(row)?.unwrap_or(1.0),
            automated_decision: c[at::AUTOMATED_DECISION].bool(row)?.unwrap_or_default(),
            price_differentiated: c[at::PRICE_DIFFERENTIATED].bool(row)?.unwrap_or_default(),
        })
    }
}

/// The row as the JSON object it stands for, parsed by the SDK: its
/// record, or its error exactly as `flowgate check` words it.
fn slow(batch: &RecordBatch, row: usize) -> Result<FlowRecord, String> {
    let mut json = String::new();
    let schema = batch.schema_ref();
    let names = schema.fields().iter().map(|field| field.name().as_str());
    write_object(&mut json, names.zip(batch.columns()), row, "", Some(RECORD))?;
    FlowRecord::from_json(json.as_bytes()).map_err(|err| err.to_string())
}

fn write_object<'a>(
    json: &mut String,
    columns: impl Iterator<Item = (&'a str, &'a ArrayRef)>,
    row: usize,
    path: &str,
    specs: Option<&'static [Spec]>,
) -> Result<(), String> {
    json.push('{');
    let mut first = true;
    for (name, array) in columns {
        if null_at(array, row) {
            continue;
        }
        if !first {
            json.push(',');
        }
        first = false;
        json.push_str(&serde_json::to_string(name).expect("a string serialises"));
        json.push(':');
        let path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        let kind = specs.and_then(|specs| specs.iter().find(|spec| spec.name == name)).map(|spec| spec.kind);
        write_value(json, array, row, &path, kind)?;
    }
    json.push('}');
    Ok(())
}

/// Writes one Arrow value as JSON; a value JSON cannot hold (a NaN, bytes,
/// a timestamp) is the field's error at once, in serde's words.
fn write_value(json: &mut String, array: &ArrayRef, row: usize, path: &str, kind: Option<Kind>) -> Result<(), String> {
    use std::fmt::Write;
    let expected = kind.map_or("no value (the record has no such field)", expected);
    let unexpected = |what: serde::de::Unexpected<'_>| -> String {
        let err: serde_json::Error = match kind {
            Some(Kind::Share) => serde::de::Error::invalid_value(what, &expected),
            _ => serde::de::Error::invalid_type(what, &expected),
        };
        format!("`{path}`: {err}")
    };
    macro_rules! number {
        ($type:ty) => {{
            let _ = write!(json, "{}", array.as_primitive::<$type>().value(row));
        }};
    }
    macro_rules! float {
        ($value:expr) => {{
            let value = f64::from($value);
            if !value.is_finite() {
                return Err(unexpected(serde::de::Unexpected::Float(value)));
            }
            json.push_str(&serde_json::to_string(&value).expect("a finite float serialises"));
        }};
    }
    match array.data_type() {
        DataType::Boolean => json.push_str(if array.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int8 => number!(Int8Type),
        DataType::Int16 => number!(Int16Type),
        DataType::Int32 => number!(Int32Type),
        DataType::Int64 => number!(Int64Type),
        DataType::UInt8 => number!(UInt8Type),
        DataType::UInt16 => number!(UInt16Type),
        DataType::UInt32 => number!(UInt32Type),
        DataType::UInt64 => number!(UInt64Type),
        DataType::Float16 => float!(array.as_primitive::<Float16Type>().value(row)),
        DataType::Float32 => float!(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => float!(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            let value = array.as_primitive::<Decimal128Type>().value(row);
            json.push_str(&decimal_text(value, *scale));
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
            if text(array).is_some() =>
        {
            let Some(strings) = text(array) else { unreachable!("checked above") };
            json.push_str(&serde_json::to_string(strings.get(row)).expect("a string serialises"));
        }
        DataType::Dictionary(..) => {
            let key = dictionary_key(array, row).ok_or_else(|| unexpected(serde::de::Unexpected::Unit))?;
            write_value(json, array.as_any_dictionary().values(), key, path, kind)?;
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let Some(Values::List(List { range, .. })) = list(array) else { unreachable!("a list type") };
            let values = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().values(),
                DataType::LargeList(_) => array.as_list::<i64>().values(),
                _ => array.as_fixed_size_list().values(),
            };
            let (start, end) = range(row);
            json.push('[');
            for at in start..end {
                if at > start {
                    json.push(',');
                }
                if null_at(values, at) {
                    json.push_str("null");
                } else {
                    write_value(json, values, at, &format!("{path}[{}]", at - start), Some(Kind::Word))?;
                }
            }
            json.push(']');
        }
        DataType::Struct(_) => {
            let structs: &StructArray = array.as_struct();
            let specs = match kind {
                Some(Kind::Group(specs)) => Some(specs),
                _ => None,
            };
            write_object(json, structs.column_names().into_iter().zip(structs.columns()), row, path, specs)?;
        }
        other => return Err(format!("`{path}`: a column of Arrow type `{other}`, expected {expected}")),
    }
    Ok(())
}

/// Whether the value at `row` is null, in O(1) whatever the layout (the
/// slow path reads single rows: no buffer is computed for the whole array).
fn null_at(array: &ArrayRef, row: usize) -> bool {
    match array.data_type() {
        DataType::Null => true,
        DataType::Dictionary(..) => {
            dictionary_key(array, row).is_none_or(|key| null_at(array.as_any_dictionary().values(), key))
        }
        _ => array.is_null(row),
    }
}

/// The dictionary index at `row`, `None` where the key is null.
fn dictionary_key(array: &ArrayRef, row: usize) -> Option<usize> {
    let keys = array.as_any_dictionary().keys();
    if keys.is_null(row) {
        return None;
    }
    macro_rules! key {
        ($type:ty) => {
            usize::try_from(keys.as_primitive::<$type>().value(row)).ok()
        };
    }
    match keys.data_type() {
        DataType::Int8 => key!(Int8Type),
        DataType::Int16 => key!(Int16Type),
        DataType::Int32 => key!(Int32Type),
        DataType::Int64 => key!(Int64Type),
        DataType::UInt8 => key!(UInt8Type),
        DataType::UInt16 => key!(UInt16Type),
        DataType::UInt32 => key!(UInt32Type),
        DataType::UInt64 => key!(UInt64Type),
        _ => None,
    }
}

/// A decimal's text: its digits with the point `scale` places from the right.
fn decimal_text(value: i128, scale: i8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    match usize::try_from(scale) {
        Ok(0) => format!("{sign}{digits}"),
        Ok(scale) => {
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (whole, fraction) = padded.split_at(padded.len() - scale);
            format!("{sign}{whole}.{fraction}")
        }
        // A negative scale: whole numbers times a power of ten.
        Err(_) => format!("{sign}{digits}{}", "0".repeat(usize::from(scale.unsigned_abs()))),
    }
}
