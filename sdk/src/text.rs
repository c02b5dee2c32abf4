//! The characters that text from outside may not carry as they are into
//! anything a person or a log viewer reads, and the one way they are
//! written instead.
//!
//! Defined here, in the SDK, because both sides show outside text: the
//! SDK's schema parser quotes a module's words in its errors, and the host
//! escapes every name, message, record field and path it prints. One class,
//! so the two cannot drift (the host's `flowgate::escape` is this
//! [`escape`]).
//!
//! The class: every control character (C0, DEL and C1, Unicode's `Cc`), the
//! line and paragraph separators U+2028 and U+2029 (Unicode-aware viewers
//! break lines there), and every format character (Unicode's `Cf`: the
//! bidirectional embeddings, overrides and isolates U+202A to U+202E and
//! U+2066 to U+2069, zero-width characters, the byte order mark, invisible
//! tags...), which can reorder or hide text. 237 code points in all
//! (Unicode 16).

use std::fmt::Write as _;

/// The format characters (`Cf`) of Unicode 16, as inclusive ranges.
const FORMAT: [(u32, u32); 21] = [
    (0x00ad, 0x00ad),
    (0x0600, 0x0605),
    (0x061c, 0x061c),
    (0x06dd, 0x06dd),
    (0x070f, 0x070f),
    (0x0890, 0x0891),
    (0x08e2, 0x08e2),
    (0x180e, 0x180e),
    (0x200b, 0x200f),
    (0x202a, 0x202e),
    (0x2060, 0x2064),
    (0x2066, 0x206f),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
];

/// Whether `ch` must be escaped before outside text is shown: a control,
/// line or paragraph separator, or format character.
pub fn needs_escape(ch: char) -> bool {
    let code = ch as u32;
    ch.is_control()
        || code == 0x2028
        || code == 0x2029
        || FORMAT.iter().any(|&(low, high)| (low..=high).contains(&code))
}

/// Whether `text` can be shown as it is.
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(needs_escape)
}

/// `text` with every character of the class written as a `\u{..}` escape,
/// cut to at most `cap` bytes of the original (on a character boundary)
/// with `…` marking the cut.
///
/// ```
/// # use flowgate_sdk::text::escape;
/// assert_eq!(escape("ok\nflowgate: activated `x`\u{1b}[2J", 100), "ok\\u{a}flowgate: activated `x`\\u{1b}[2J");
/// assert_eq!(escape("a\u{2028}b\u{202e}c", 100), "a\\u{2028}b\\u{202e}c");
/// assert_eq!(escape("abcdef", 3), "abc…");
/// ```
pub fn escape(text: &str, cap: usize) -> String {
    let mut cut = cap.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 1);
    for ch in text[..cut].chars() {
        if needs_escape(ch) {
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

/// JSON text with every character of the class inside its strings written
/// as a JSON `\uXXXX` escape: the same values to any JSON parser, and no
/// line break or reordering for a viewer. (JSON's own syntax is ASCII, so
/// such characters can only be inside strings; serializers leave all but
/// C0 controls as they are.)
pub fn escape_json(json: String) -> String {
    if json.is_ascii() || !json.chars().any(needs_escape) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for ch in json.chars() {
        if needs_escape(ch) {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code point of the class, counted, and the ranges the threat
    /// model names checked one by one.
    #[test]
    fn the_class_is_controls_separators_and_format_characters() {
        let escaped: Vec<char> = (0..=0x10ffff).filter_map(char::from_u32).filter(|&ch| needs_escape(ch)).collect();
        assert_eq!(escaped.len(), 65 + 2 + 170, "Cc, Zl and Zp, Cf");
        let named = [(0x00, 0x1f), (0x7f, 0x9f), (0x2028, 0x2029), (0x202a, 0x202e), (0x2066, 0x2069)];
        for (low, high) in named.into_iter().chain(FORMAT) {
            for code in low..=high {
                let ch = char::from_u32(code).unwrap();
                assert!(needs_escape(ch), "U+{code:04X}");
                assert_eq!(escape(&ch.to_string(), 16), format!("\\u{{{code:x}}}"));
            }
        }
        assert!(is_printable("PIPL Art. 13 第十三条 café"));
    }

    #[test]
    fn json_keeps_its_values_and_loses_its_breaks() {
        let json = "{\"id\":\"a\u{2028}b\u{202e}c\u{e0041}\"}".to_string();
        let safe = escape_json(json);
        assert_eq!(safe, "{\"id\":\"a\\u2028b\\u202ec\\udb40\\udc41\"}");
        assert!(safe.is_ascii());
        assert_eq!(escape_json("{\"id\":\"第\"}".into()), "{\"id\":\"第\"}");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(escape("第十三条", 4), "第…");
        assert_eq!(escape("第十三条", 100), "第十三条");
        assert_eq!(escape("", 0), "");
    }
}
