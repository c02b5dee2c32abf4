//! "Did you mean ...?": the nearest valid word for a misspelt one, so an
//! author who writes `thirdparty` or `no-marketting` is told the word they
//! meant, not only the list of every word there is.

/// The word of `candidates` nearest to `word`, if one is near enough to be
/// a slip of the keyboard: at most a third of its letters differ (at least
/// one). Ties go to the first candidate.
pub(crate) fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(word, candidate), candidate))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Serde's message for a word it does not know (`unknown variant `x`,
/// expected one of `a`, `b`` or `unknown field ...`), with `; did you
/// mean `a`?` added when one of the expected words is near; any other
/// message as it is.
pub(crate) fn with_suggestion(message: &str) -> String {
    let suggestion = unknown_word(message).and_then(|(word, expected)| nearest(word, expected));
    match suggestion {
        Some(near) => format!("{message}; did you mean `{near}`?"),
        None => message.to_owned(),
    }
}

/// The unknown word of a serde message, and the words it expected.
fn unknown_word(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown variant `").or_else(|| message.strip_prefix("unknown field `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let words = expected.split('`').skip(1).step_by(2).collect();
    Some((word, words))
}

/// The Levenshtein distance between `a` and `b`, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slip_finds_its_word_and_a_different_word_finds_none() {
        assert_eq!(nearest("thirdparty", ["third_party", "individual"]), Some("third_party"));
        assert_eq!(nearest("no-marketting", ["no-marketing", "no-basis"]), Some("no-marketing"));
        assert_eq!(nearest("religion", ["location", "health"]), None);
        assert_eq!(nearest("x", ["y"]), Some("y"), "one letter may always differ");
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn serde_messages_get_the_nearest_expected_word() {
        let message = "unknown variant `thirdparty`, expected one of `third_party`, `individual`";
        assert_eq!(with_suggestion(message), format!("{message}; did you mean `third_party`?"));
        let field = "unknown field `purpse`, expected one of `id`, `purpose`";
        assert!(with_suggestion(field).ends_with("did you mean `purpose`?"));
        let far = "unknown variant `zzzzzz`, expected `a` or `b`";
        assert_eq!(with_suggestion(far), far);
        assert_eq!(with_suggestion("invalid type: integer"), "invalid type: integer");
    }
}
