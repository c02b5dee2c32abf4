//! Lower-case hex, the form digests, keys and signatures take where
//! Flowgate shows them to people (`ID.pub` files, `signatures.toml`).
//!
//! ```
//! use flowgate_log::hex;
//! assert_eq!(hex::encode(&[0, 0xab]), "00ab");
//! assert_eq!(hex::decode::<2>("00AB"), Some([0, 0xab]));
//! assert_eq!(hex::decode::<2>("00a"), None);
//! ```

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// The `N` bytes `text` spells in hex (either case), or `None`.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(super::encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode::<3>("00ABff"), Some([0, 0xab, 0xff]));
        for bad in ["00abf", "00abfff", "00abfg", "+0abff", "00ab f"] {
            assert_eq!(super::decode::<3>(bad), None, "{bad}");
        }
    }
}
