//! Text that comes from outside the host (a guest's rule table and
//! messages, file and directory names) made safe to print.
//!
//! A policy must not be able to forge a log line or move the cursor of the
//! terminal that reads the host's output, so such text is escaped before it
//! reaches a log, an error or a decision, and capped in length.

use std::fmt::Write as _;

/// `text` with control characters (newlines, escapes, bidirectional
/// overrides...) written as `\u{..}` escapes, cut to at most `cap` bytes
/// of the original (on a character boundary) with `…` marking the cut.
///
/// ```
/// # use flowgate::escape;
/// assert_eq!(escape("ok\nflowgate: activated `x`\u{1b}[2J", 100), "ok\\u{a}flowgate: activated `x`\\u{1b}[2J");
/// assert_eq!(escape("abcdef", 3), "abc…");
/// ```
pub fn escape(text: &str, cap: usize) -> String {
    let mut cut = cap.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 1);
    for ch in text[..cut].chars() {
        if is_unsafe(ch) {
            let _ = write!(out, "\\u{{{:x}}}", ch as u32);
        } else {
            out.push(ch);
        }
    }
    if cut < text.len() {
        out.push('…');
    }
    out
}

/// Whether `text` can be shown as it is: no control or formatting characters.
pub(crate) fn is_printable(text: &str) -> bool {
    !text.chars().any(is_unsafe)
}

/// Control characters, and the Unicode format characters that reorder or
/// hide text (bidirectional overrides, zero-width joiners).
fn is_unsafe(ch: char) -> bool {
    ch.is_control()
        || matches!(ch, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        assert_eq!(escape("a\rb\u{7}c", 64), "a\\u{d}b\\u{7}c");
        assert_eq!(escape("x\u{202e}y", 64), "x\\u{202e}y");
        assert!(is_printable("PIPL Art. 13 第十三条"));
        assert!(!is_printable("two\nlines"));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(escape("第十三条", 4), "第…");
        assert_eq!(escape("第十三条", 100), "第十三条");
        assert_eq!(escape("", 0), "");
    }
}
