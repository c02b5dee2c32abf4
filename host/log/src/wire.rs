//! The primitives log entries are made of, read strictly.
//!
//! Three kinds of field, so that a decoder in any language is a page long
//! (`docs/receipts.md` specifies them):
//! - an unsigned integer: LEB128 (7 bits a byte, least significant first,
//!   high bit set on every byte but the last), at most 10 bytes, in its
//!   shortest form: a redundant trailing zero byte is refused, so one
//!   number has one spelling and one entry one hash;
//! - a string: its length in bytes as an integer, then that much UTF-8;
//! - a digest: 32 bytes as they are.
//!
//! The reader never allocates more than the bytes left could hold: a count
//! is checked against what remains before anything is reserved.

use thiserror::Error;

use crate::digest::Digest;

/// What is wrong with an entry's bytes, and in which field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The bytes end inside a field.
    #[error("the entry ends inside `{0}`")]
    Truncated(&'static str),
    /// An integer with a redundant zero byte.
    #[error("`{0}` is not in its shortest form")]
    NonMinimal(&'static str),
    /// An integer beyond 64 bits.
    #[error("`{0}` does not fit in 64 bits")]
    Overflow(&'static str),
    /// A string longer than its field allows.
    #[error("`{field}` is {len} bytes long, more than {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: u64,
        /// The most it may have.
        max: usize,
    },
    /// A string that is not UTF-8.
    #[error("`{0}` is not UTF-8")]
    NotUtf8(&'static str),
    /// A count larger than the bytes left could hold.
    #[error("`{field}` claims {count} items, more than the entry holds")]
    Count {
        /// The field.
        field: &'static str,
        /// The count claimed.
        count: u64,
    },
}

/// Reads fields from the front of an entry.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn byte(&mut self, field: &'static str) -> Result<u8, WireError> {
        let (&first, rest) = self.bytes.split_first().ok_or(WireError::Truncated(field))?;
        self.bytes = rest;
        Ok(first)
    }

    pub(crate) fn uint(&mut self, field: &'static str) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte(field)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(WireError::Overflow(field));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(WireError::NonMinimal(field));
                }
                return Ok(value);
            }
        }
        Err(WireError::Overflow(field))
    }

    /// An integer that must fit in 32 bits (an index into a list).
    pub(crate) fn small(&mut self, field: &'static str) -> Result<u32, WireError> {
        u32::try_from(self.uint(field)?).map_err(|_| WireError::Overflow(field))
    }

    /// A count of items of at least `min_item` bytes each.
    pub(crate) fn count(&mut self, field: &'static str, min_item: usize) -> Result<usize, WireError> {
        let count = self.uint(field)?;
        if count.saturating_mul(min_item as u64) > self.bytes.len() as u64 {
            return Err(WireError::Count { field, count });
        }
        Ok(count as usize)
    }

    pub(crate) fn string(&mut self, field: &'static str, max: usize) -> Result<String, WireError> {
        let len = self.uint(field)?;
        if len > max as u64 {
            return Err(WireError::TooLong { field, len, max });
        }
        let len = len as usize;
        if len > self.bytes.len() {
            return Err(WireError::Truncated(field));
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|_| WireError::NotUtf8(field))
    }

    pub(crate) fn digest(&mut self, field: &'static str) -> Result<Digest, WireError> {
        if self.bytes.len() < 32 {
            return Err(WireError::Truncated(field));
        }
        let (digest, rest) = self.bytes.split_at(32);
        self.bytes = rest;
        Ok(Digest::from_bytes(digest.try_into().expect("32 bytes")))
    }
}

/// Appends an integer.
pub(crate) fn put_uint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a string.
pub(crate) fn put_string(out: &mut Vec<u8>, text: &str) {
    put_uint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn integers_have_one_spelling() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_uint(&mut out, *value);
            assert_eq!(&out, bytes, "{value}");
            assert_eq!(Reader::new(bytes).uint("n"), Ok(*value));
        }
        assert_eq!(Reader::new(&[0x80, 0x00]).uint("n"), Err(WireError::NonMinimal("n")));
        assert_eq!(Reader::new(&[0x81, 0x80, 0x00]).uint("n"), Err(WireError::NonMinimal("n")));
        assert_eq!(Reader::new(&[0x80]).uint("n"), Err(WireError::Truncated("n")));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&over).uint("n"), Err(WireError::Overflow("n")));
        let eleven = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00];
        assert_eq!(Reader::new(&eleven).uint("n"), Err(WireError::Overflow("n")));
    }

    #[test]
    fn strings_and_counts_are_bounded_by_the_bytes() {
        let mut out = Vec::new();
        put_string(&mut out, "héllo");
        assert_eq!(Reader::new(&out).string("s", 6), Ok("héllo".to_owned()));
        assert_eq!(Reader::new(&out).string("s", 5), Err(WireError::TooLong { field: "s", len: 6, max: 5 }));
        assert_eq!(Reader::new(&out[..4]).string("s", 6), Err(WireError::Truncated("s")));
        assert_eq!(Reader::new(&[2, 0xc3, 0x28]).string("s", 6), Err(WireError::NotUtf8("s")));
        // A count of a billion items in four bytes is refused before any allocation.
        let mut claim = Vec::new();
        put_uint(&mut claim, 1 << 30);
        claim.extend_from_slice(&[0; 4]);
        assert_eq!(Reader::new(&claim).count("list", 1), Err(WireError::Count { field: "list", count: 1 << 30 }));
        assert_eq!(Reader::new(&[2, 0, 0]).count("list", 1), Ok(2));
        assert_eq!(Reader::new(&[31]).digest("d"), Err(WireError::Truncated("d")));
    }

    proptest! {
        #[test]
        fn any_integer_round_trips(value in any::<u64>()) {
            let mut out = Vec::new();
            put_uint(&mut out, value);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.uint("n"), Ok(value));
            prop_assert_eq!(reader.remaining(), 0);
        }
    }
}
