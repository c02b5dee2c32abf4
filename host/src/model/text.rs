//! Text that comes from outside the host (a guest's rule table and
//! messages, manifests, schemas, records, file and directory names,
//! requests) made safe to print.
//!
//! A policy, a bundle's author or a record's sender must not be able to
//! forge a log line, reorder one, or move the cursor of the terminal that
//! reads the host's output, so such text is escaped before it reaches a
//! log, an error, an event, a listing or a decision, and capped in length.
//! The character class is the SDK's ([`flowgate_sdk::text`]): the SDK
//! quotes a module's words with the same one.

/// `text` with control characters, line and paragraph separators and
/// format characters (bidirectional overrides and isolates, zero-width
/// characters...) written as `\u{..}` escapes, cut to at most `cap` bytes
/// of the original (on a character boundary) with `…` marking the cut.
///
/// ```
/// # use flowgate::escape;
/// assert_eq!(escape("ok\nflowgate: activated `x`\u{1b}[2J", 100), "ok\\u{a}flowgate: activated `x`\\u{1b}[2J");
/// assert_eq!(escape("ok\u{2028}flowgate: activated `x`", 100), "ok\\u{2028}flowgate: activated `x`");
/// assert_eq!(escape("abcdef", 3), "abc…");
/// ```
pub fn escape(text: &str, cap: usize) -> String {
    flowgate_sdk::text::escape(text, cap)
}

/// JSON whose strings carry outside text, with every character of the same
/// class written as a JSON `\uXXXX` escape: a parser reads the same values,
/// a viewer sees one line.
pub fn escape_json(json: String) -> String {
    flowgate_sdk::text::escape_json(json)
}

/// Whether `text` can be shown as it is: no character [`escape`] would escape.
pub(crate) fn is_printable(text: &str) -> bool {
    flowgate_sdk::text::is_printable(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        assert_eq!(escape("a\rb\u{7}c", 64), "a\\u{d}b\\u{7}c");
        assert_eq!(escape("x\u{202e}y\u{2029}z", 64), "x\\u{202e}y\\u{2029}z");
        assert!(is_printable("PIPL Art. 13 第十三条"));
        assert!(!is_printable("two\nlines"));
        assert!(!is_printable("two\u{2028}lines"));
    }
}
