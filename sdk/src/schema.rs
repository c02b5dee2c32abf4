//! What a policy module declares about the records it reads: which string
//! fields it needs, and every word it knows, by name.
//!
//! Since ABI version 2, a module hands the host its schema (the `flowgate_schema`
//! export) once, at load. Two things follow from it:
//!
//! - the host copies into the module only the strings it declares
//!   ([`StringFields`]; nine of the ten reference policies read none);
//! - wire codes stay private to each build. The host matches the module's
//!   words to its own by name and translates codes both ways, so a host
//!   whose vocabulary has grown runs policies built against an older SDK,
//!   and the reverse. A word a policy does not know is never handed to it as
//!   another word: the host answers for it (`docs/flow-record.md`,
//!   "A vocabulary that grows").
//!
//! The text form, one declaration per line:
//!
//! ```text
//! flowgate schema 2
//! reads recipient.id recipient.licence
//! regime pipl gdpr
//! sector ecommerce payments ride_hailing ...
//! ```
//!
//! `reads` lists string fields (it may list none); every other line names a
//! [`Vocabulary`] and its words in wire-code order. Parsing is strict and
//! bounded: it runs on bytes from a module, which may be hostile.

use std::fmt;

use crate::vocabulary::*;

/// The first line of every schema.
const HEADER: &str = "flowgate schema 2";
/// The longest schema the host reads; an honest one is about 1.5 KiB.
pub const MAX_SCHEMA_BYTES: usize = 16 * 1024;
/// The longest word.
const MAX_WORD_BYTES: usize = 64;

/// The string fields of a record, which a policy declares it reads.
///
/// The host copies into a policy only the strings it declares; the others
/// reach it empty. The default for a [`Policy`](crate::Policy) is
/// [`StringFields::ALL`], so forgetting the declaration costs speed, never
/// correctness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StringFields(u8);

impl StringFields {
    /// No string at all: the policy decides on the record's words and numbers.
    pub const NONE: StringFields = StringFields(0);
    /// `id`.
    pub const ID: StringFields = StringFields(1);
    /// `platform.id`.
    pub const PLATFORM_ID: StringFields = StringFields(2);
    /// `recipient.id`.
    pub const RECIPIENT_ID: StringFields = StringFields(4);
    /// `recipient.licence`.
    pub const RECIPIENT_LICENCE: StringFields = StringFields(8);
    /// Every string field.
    pub const ALL: StringFields = StringFields(15);

    /// The field names, in wire order (bit `n` is the `n`-th).
    pub const NAMES: [&'static str; 4] = ["id", "platform.id", "recipient.id", "recipient.licence"];

    /// Both sets.
    pub const fn union(self, other: StringFields) -> StringFields {
        StringFields(self.0 | other.0)
    }

    /// Whether the `n`-th string field (in wire order) is in the set.
    pub const fn has(self, n: usize) -> bool {
        self.0 & (1 << n) != 0
    }

    /// The names of the fields in the set, in wire order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().enumerate().filter(move |(n, _)| self.has(*n)).map(|(_, name)| name)
    }

    fn named(name: &str) -> Option<StringFields> {
        Self::NAMES.iter().position(|n| *n == name).map(|n| StringFields(1 << n))
    }
}

impl std::ops::BitOr for StringFields {
    type Output = StringFields;

    fn bitor(self, other: StringFields) -> StringFields {
        self.union(other)
    }
}

/// A closed list of words that records or answers carry as codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vocabulary {
    /// [`Regime`].
    Regime,
    /// [`Sector`].
    Sector,
    /// [`Action`].
    Action,
    /// [`Category`].
    Category,
    /// [`DslClass`].
    DslClass,
    /// [`Deidentification`].
    Deidentification,
    /// [`Purpose`] (also read for `original_purpose`).
    Purpose,
    /// [`LawfulBasis`].
    LawfulBasis,
    /// [`ConsentState`].
    ConsentState,
    /// [`ConsentKind`].
    ConsentKind,
    /// [`RecipientKind`].
    RecipientKind,
    /// [`ExportMechanism`].
    ExportMechanism,
    /// [`Remedy`], in answers.
    Remedy,
    /// [`ObligationKind`], in answers.
    Obligation,
}

impl Vocabulary {
    /// Every vocabulary, in schema order.
    pub const ALL: [Vocabulary; 14] = [
        Vocabulary::Regime,
        Vocabulary::Sector,
        Vocabulary::Action,
        Vocabulary::Category,
        Vocabulary::DslClass,
        Vocabulary::Deidentification,
        Vocabulary::Purpose,
        Vocabulary::LawfulBasis,
        Vocabulary::ConsentState,
        Vocabulary::ConsentKind,
        Vocabulary::RecipientKind,
        Vocabulary::ExportMechanism,
        Vocabulary::Remedy,
        Vocabulary::Obligation,
    ];

    /// Its name in a schema.
    pub const fn name(self) -> &'static str {
        match self {
            Vocabulary::Regime => "regime",
            Vocabulary::Sector => "sector",
            Vocabulary::Action => "action",
            Vocabulary::Category => "category",
            Vocabulary::DslClass => "dsl_class",
            Vocabulary::Deidentification => "deidentification",
            Vocabulary::Purpose => "purpose",
            Vocabulary::LawfulBasis => "lawful_basis",
            Vocabulary::ConsentState => "consent_state",
            Vocabulary::ConsentKind => "consent_kind",
            Vocabulary::RecipientKind => "recipient_kind",
            Vocabulary::ExportMechanism => "export_mechanism",
            Vocabulary::Remedy => "remedy",
            Vocabulary::Obligation => "obligation",
        }
    }

    /// Its position in [`Vocabulary::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The record field (or answer part) that carries its words.
    pub const fn field(self) -> &'static str {
        match self {
            Vocabulary::Regime => "regime",
            Vocabulary::Sector => "platform.sector",
            Vocabulary::Action => "action",
            Vocabulary::Category => "data.categories",
            Vocabulary::DslClass => "data.dsl_class",
            Vocabulary::Deidentification => "data.deidentification",
            Vocabulary::Purpose => "purpose",
            Vocabulary::LawfulBasis => "lawful_basis",
            Vocabulary::ConsentState => "consent.state",
            Vocabulary::ConsentKind => "consent.kind",
            Vocabulary::RecipientKind => "recipient.kind",
            Vocabulary::ExportMechanism => "export_mechanism",
            Vocabulary::Remedy => "remedies",
            Vocabulary::Obligation => "obligations",
        }
    }

    /// The most words the wire can carry: sets are 16-bit, single words 8-bit
    /// (one code of which is kept for "no purpose given").
    pub const fn capacity(self) -> usize {
        match self {
            Vocabulary::Category | Vocabulary::Remedy | Vocabulary::Obligation => 16,
            _ => 255,
        }
    }

    /// The words of this build's SDK, in wire-code order.
    pub fn words(self) -> Vec<&'static str> {
        fn all<W: Copy>(words: &[W], as_str: fn(W) -> &'static str) -> Vec<&'static str> {
            words.iter().map(|w| as_str(*w)).collect()
        }
        match self {
            Vocabulary::Regime => all(Regime::ALL, Regime::as_str),
            Vocabulary::Sector => all(Sector::ALL, Sector::as_str),
            Vocabulary::Action => all(Action::ALL, Action::as_str),
            Vocabulary::Category => all(Category::ALL, Category::as_str),
            Vocabulary::DslClass => all(DslClass::ALL, DslClass::as_str),
            Vocabulary::Deidentification => all(Deidentification::ALL, Deidentification::as_str),
            Vocabulary::Purpose => all(Purpose::ALL, Purpose::as_str),
            Vocabulary::LawfulBasis => all(LawfulBasis::ALL, LawfulBasis::as_str),
            Vocabulary::ConsentState => all(ConsentState::ALL, ConsentState::as_str),
            Vocabulary::ConsentKind => all(ConsentKind::ALL, ConsentKind::as_str),
            Vocabulary::RecipientKind => all(RecipientKind::ALL, RecipientKind::as_str),
            Vocabulary::ExportMechanism => all(ExportMechanism::ALL, ExportMechanism::as_str),
            Vocabulary::Remedy => all(Remedy::ALL, Remedy::as_str),
            Vocabulary::Obligation => all(ObligationKind::ALL, ObligationKind::as_str),
        }
    }
}

impl fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A module's declaration: the strings it reads and the words it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The string fields the module reads.
    pub reads: StringFields,
    /// The words of each vocabulary, indexed by [`Vocabulary::index`], in
    /// the module's wire-code order.
    pub words: Vec<Vec<String>>,
}

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

impl Schema {
    /// The schema of a module built with this SDK that reads `reads`.
    pub fn current(reads: StringFields) -> Schema {
        let words = Vocabulary::ALL.iter().map(|v| v.words().into_iter().map(str::to_owned).collect()).collect();
        Schema { reads, words }
    }

    /// The words of `vocabulary`.
    pub fn words(&self, vocabulary: Vocabulary) -> &[String] {
        &self.words[vocabulary.index()]
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut text = String::from(HEADER);
        text.push_str("\nreads");
        for name in self.reads.names() {
            text.push(' ');
            text.push_str(name);
        }
        for vocabulary in Vocabulary::ALL {
            text.push('\n');
            text.push_str(vocabulary.name());
            for word in self.words(vocabulary) {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push('\n');
        text
    }

    /// Reads the text form, refusing anything but exactly one `reads` line
    /// and one line per known vocabulary, each word well formed, unique and
    /// within what the wire can carry.
    pub fn parse(text: &[u8]) -> Result<Schema, SchemaError> {
        let bad = |message: String| Err(SchemaError(message));
        if text.len() > MAX_SCHEMA_BYTES {
            return bad(format!("{} bytes, more than the {MAX_SCHEMA_BYTES} allowed", text.len()));
        }
        let Ok(text) = std::str::from_utf8(text) else {
            return bad("it is not UTF-8".into());
        };
        let mut lines = text.lines().enumerate().map(|(n, line)| (n + 1, line));
        if lines.next().map(|(_, line)| line) != Some(HEADER) {
            return bad(format!("the first line must be `{HEADER}`"));
        }
        let mut reads = None;
        let mut words: Vec<Option<Vec<String>>> = vec![None; Vocabulary::ALL.len()];
        for (n, line) in lines {
            let mut parts = line.split(' ');
            let name = parts.next().unwrap_or_default();
            if name == "reads" {
                if reads.is_some() {
                    return bad(format!("line {n}: a second `reads` line"));
                }
                let mut fields = StringFields::NONE;
                for field in parts {
                    let Some(one) = StringFields::named(field) else {
                        return bad(format!(
                            "line {n}: `{}` is not a string field (expected one of {})",
                            shown(field),
                            StringFields::NAMES.join(", ")
                        ));
                    };
                    fields = fields | one;
                }
                reads = Some(fields);
                continue;
            }
            let Some(vocabulary) = Vocabulary::ALL.into_iter().find(|v| v.name() == name) else {
                return bad(format!(
                    "line {n}: `{}` is no vocabulary this host knows; the policy needs a newer host",
                    shown(name)
                ));
            };
            let slot = &mut words[vocabulary.index()];
            if slot.is_some() {
                return bad(format!("line {n}: a second `{vocabulary}` line"));
            }
            let list: Vec<String> = parts.map(str::to_owned).collect();
            if list.is_empty() || list.len() > vocabulary.capacity() {
                return bad(format!("line {n}: `{vocabulary}` must have 1 to {} words", vocabulary.capacity()));
            }
            for (i, word) in list.iter().enumerate() {
                let well_formed = !word.is_empty()
                    && word.len() <= MAX_WORD_BYTES
                    && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !well_formed {
                    return bad(format!(
                        "line {n}: `{}` is not a word (1 to {MAX_WORD_BYTES} lower-case letters, digits, `_`)",
                        shown(word)
                    ));
                }
                if list[..i].contains(word) {
                    return bad(format!("line {n}: `{word}` appears twice in `{vocabulary}`"));
                }
            }
            *slot = Some(list);
        }
        let Some(reads) = reads else {
            return bad("no `reads` line".into());
        };
        let mut complete = Vec::with_capacity(words.len());
        for (vocabulary, list) in Vocabulary::ALL.into_iter().zip(words) {
            match list {
                Some(list) => complete.push(list),
                None => return bad(format!("no `{vocabulary}` line")),
            }
        }
        Ok(Schema { reads, words: complete })
    }
}

/// A word from a module, cut short and escaped for a message, as the host
/// escapes all outside text ([`crate::text`]).
fn shown(word: &str) -> String {
    crate::text::escape(word, MAX_WORD_BYTES)
}

// The wire sets must hold every word of this build.
const _: () = assert!(Category::ALL.len() <= 16 && Remedy::ALL.len() <= 16 && ObligationKind::ALL.len() <= 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips() {
        let schema = Schema::current(StringFields::RECIPIENT_ID | StringFields::RECIPIENT_LICENCE);
        let text = schema.to_text();
        assert!(text.starts_with("flowgate schema 2\nreads recipient.id recipient.licence\nregime pipl gdpr\n"));
        assert_eq!(Schema::parse(text.as_bytes()).unwrap(), schema);
        let none = Schema::current(StringFields::NONE);
        assert_eq!(Schema::parse(none.to_text().as_bytes()).unwrap().reads, StringFields::NONE);
    }

    #[test]
    fn malformed_schemas_are_refused_with_the_line() {
        let good = Schema::current(StringFields::ALL).to_text();
        let cases: [(String, &str); 8] = [
            (good.replacen("schema 2", "schema 1", 1), "first line"),
            (good.replacen("reads id", "reads secret", 1), "`secret` is not a string field"),
            (good.replacen("regime pipl gdpr", "regime pipl pipl", 1), "`pipl` appears twice"),
            (good.replacen("regime pipl gdpr", "regime pipl GDPR", 1), "`GDPR` is not a word"),
            (good.replacen("regime pipl gdpr\n", "", 1), "no `regime` line"),
            (format!("{good}colour red\n"), "line 17: `colour` is no vocabulary"),
            (format!("{good}action use\n"), "a second `action` line"),
            (good.replacen("category identity", &format!("category {}", "x ".repeat(20).trim()), 1), "1 to 16"),
        ];
        for (text, expected) in cases {
            let err = Schema::parse(text.as_bytes()).unwrap_err();
            assert!(err.0.contains(expected), "{err} does not say {expected}");
        }
        assert!(Schema::parse(&vec![b'a'; MAX_SCHEMA_BYTES + 1]).unwrap_err().0.contains("more than"));
        assert!(Schema::parse(&[0xff, 0xfe]).unwrap_err().0.contains("UTF-8"));
    }

    /// A module's words reach the host's messages, so they are escaped as
    /// all outside text is: no separator, control or format character
    /// survives to start a forged line or reorder one.
    #[test]
    fn words_quoted_in_errors_are_escaped() {
        let good = Schema::current(StringFields::ALL).to_text();
        for ch in ['\u{2028}', '\u{2029}', '\u{85}', '\u{202e}', '\u{2066}', '\u{feff}', '\u{e0041}'] {
            let hostile = format!("x{ch}flowgate: activated `evil`");
            for text in [format!("{good}{hostile} red\n"), good.replacen("reads id", &format!("reads {hostile}"), 1)] {
                let err = Schema::parse(text.as_bytes()).unwrap_err().0;
                assert!(!err.contains(ch), "{err:?} carries U+{:04X}", ch as u32);
                assert!(err.contains(&format!("x\\u{{{:x}}}flowgate", ch as u32)), "{err:?}");
            }
        }
    }
}
