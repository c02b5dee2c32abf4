//! How a record reaches one policy, and how its answer comes back: only the
//! strings the policy declares, and codes in the policy's own vocabulary.
//!
//! A policy's schema ([`flowgate_sdk::schema`]) lists its words by name. When
//! they are this host's words in this host's order (any policy built with
//! the same SDK) records are copied as they are. Otherwise each code is
//! translated by name, both ways, through a table built once at load. A word
//! the policy does not know is never handed to it as another word: the
//! record is not sent, and the policy's answer for it is
//! [`Fault::UnknownWord`](crate::Fault::UnknownWord), a deny naming
//! the word (fail closed). A remedy or obligation the host does not know,
//! in an answer from a newer policy, makes that answer unusable (a fault).

use flowgate_sdk::Answer;
use flowgate_sdk::schema::{Schema, StringFields, Vocabulary};
use flowgate_sdk::wire::{self, ANSWER_BYTES, UnknownWord, WireError};

/// Marks a code the other side has no word for.
const NONE: u8 = 0xff;

/// What one policy reads, and how its codes differ from the host's.
#[derive(Debug, Clone)]
pub(crate) struct Translation {
    reads: StringFields,
    /// `None` when the policy's words are the host's, in the same order.
    tables: Option<Box<Tables>>,
}

/// Code tables per vocabulary, indexed by [`Vocabulary::index`].
#[derive(Debug, Clone)]
struct Tables {
    to_policy: [[u8; 256]; Vocabulary::ALL.len()],
    to_host: [[u8; 256]; Vocabulary::ALL.len()],
}

impl Translation {
    pub(crate) fn new(schema: &Schema) -> Translation {
        let same = Vocabulary::ALL.iter().all(|&v| schema.words(v).iter().map(String::as_str).eq(v.words()));
        let tables = (!same).then(|| {
            let mut tables = Box::new(Tables {
                to_policy: [[NONE; 256]; Vocabulary::ALL.len()],
                to_host: [[NONE; 256]; Vocabulary::ALL.len()],
            });
            for vocabulary in Vocabulary::ALL {
                let theirs = schema.words(vocabulary);
                for (host_code, word) in vocabulary.words().into_iter().enumerate() {
                    if let Some(policy_code) = theirs.iter().position(|w| w == word) {
                        // Both lists fit in a byte: the schema parser caps them.
                        tables.to_policy[vocabulary.index()][host_code] = policy_code as u8;
                        tables.to_host[vocabulary.index()][policy_code] = host_code as u8;
                    }
                }
            }
            tables
        });
        Translation { reads: schema.reads, tables }
    }

    /// Whether the policy's words are the host's, in the same order: then
    /// no record holds a word it does not know.
    pub(crate) fn is_identity(&self) -> bool {
        self.tables.is_none()
    }

    /// The first word of an encoded record the policy does not know.
    pub(crate) fn unknown_word(&self, record: &[u8]) -> Option<UnknownWord> {
        let tables = self.tables.as_ref()?;
        let mut fixed = [0; wire::FIXED_BYTES];
        fixed.copy_from_slice(&record[..wire::FIXED_BYTES]);
        wire::translate_fixed(&mut fixed, |v, code| tables.policy_code(v, code)).err()
    }

    /// The size of `record` as the policy receives it.
    pub(crate) fn record_len(&self, record: &[u8]) -> usize {
        wire::declared_len(record, self.reads)
    }

    /// Writes `record` as the policy receives it into `out`, which is
    /// [`Translation::record_len`] long. The record must hold no
    /// [`Translation::unknown_word`].
    pub(crate) fn write_record(&self, record: &[u8], out: &mut [u8]) {
        wire::copy_declared(record, self.reads, out);
        if let Some(tables) = &self.tables {
            wire::translate_fixed(&mut out[..wire::FIXED_BYTES], |v, code| tables.policy_code(v, code))
                .expect("records with unknown words are not sent");
        }
    }

    /// Reads one answer, where the guest wrote it, in the host's words.
    pub(crate) fn read_answer(&self, slot: &[u8; ANSWER_BYTES]) -> Result<Answer, WireError> {
        match &self.tables {
            None => wire::read_answer(slot),
            Some(tables) => wire::read_answer_translated(slot, |v, code| tables.host_code(v, code)),
        }
    }
}

impl Tables {
    fn policy_code(&self, vocabulary: Vocabulary, code: u8) -> Option<u8> {
        Some(self.to_policy[vocabulary.index()][usize::from(code)]).filter(|&c| c != NONE)
    }

    fn host_code(&self, vocabulary: Vocabulary, code: u8) -> Option<u8> {
        Some(self.to_host[vocabulary.index()][usize::from(code)]).filter(|&c| c != NONE)
    }
}

/// The host's word for an [`UnknownWord`] it found.
pub(crate) fn host_word(unknown: UnknownWord) -> &'static str {
    unknown.vocabulary.words().get(usize::from(unknown.code)).copied().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use flowgate_sdk::wire::{encode_record, write_answer};
    use flowgate_sdk::{Category, FlowRecord, FlowView, Remedy, RuleId};

    use super::*;

    fn encoded(categories: &str) -> Vec<u8> {
        let flow = FlowRecord::from_json(
            format!(
                r#"{{"id":"t","platform":{{"id":"p"}},"action":"use","data":{{"categories":[{categories}]}},"purpose":"service"}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        encode_record(&flow, &mut bytes);
        bytes
    }

    /// A schema whose categories lack `word`, as an older SDK's would.
    fn without_category(word: &str) -> Schema {
        let mut schema = Schema::current(StringFields::ALL);
        schema.words[Vocabulary::Category.index()].retain(|w| w != word);
        schema
    }

    #[test]
    fn the_same_vocabulary_is_copied_as_it_is() {
        let translation = Translation::new(&Schema::current(StringFields::NONE));
        assert!(translation.tables.is_none());
        let record = encoded(r#""religion""#);
        assert_eq!(translation.unknown_word(&record), None);
        assert_eq!(translation.record_len(&record), wire::FIXED_BYTES);
    }

    #[test]
    fn an_older_vocabulary_gets_its_own_codes_and_never_a_word_it_lacks() {
        let translation = Translation::new(&without_category("religion"));
        let religion = encoded(r#""contact","religion""#);
        let unknown = translation.unknown_word(&religion).unwrap();
        assert_eq!((unknown.vocabulary, host_word(unknown)), (Vocabulary::Category, "religion"));

        // `minor` comes after `religion`: the older policy's code for it is one less.
        let minor = encoded(r#""minor""#);
        assert_eq!(translation.unknown_word(&minor), None);
        let mut out = vec![0; translation.record_len(&minor)];
        translation.write_record(&minor, &mut out);
        let seen = FlowView::new(&out, StringFields::ALL).unwrap();
        assert_eq!(seen.data().categories().bits(), 1 << (Category::Minor.code() - 1));
    }

    #[test]
    fn a_newer_vocabulary_gets_the_host_words_and_its_extra_answers_are_refused() {
        let mut schema = Schema::current(StringFields::ALL);
        schema.words[Vocabulary::Remedy.index()].insert(0, "appoint_representative".into());
        let translation = Translation::new(&schema);
        assert_eq!(translation.unknown_word(&encoded(r#""health""#)), None);

        // The policy's code 0 is its new word, its code 1 the host's `aggregate` (code 0).
        let mut answer = Answer::applies();
        answer.deny(RuleId::new(0), &[Remedy::Aggregate]);
        let mut slot = [0; ANSWER_BYTES];
        write_answer(&answer, &mut slot);
        assert!(translation.read_answer(&slot).is_err(), "a remedy the host lacks");
        slot[2..4].copy_from_slice(&0b10u16.to_le_bytes());
        let read = translation.read_answer(&slot).unwrap();
        assert_eq!(read.remedies().bits(), 1 << Remedy::Aggregate.code());
    }
}
