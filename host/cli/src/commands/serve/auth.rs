//! Bearer tokens (`--token-file`): one token a line; a request must carry
//! one of them in `Authorization: Bearer TOKEN`.
//!
//! Tokens are compared as SHA-256 digests, in constant time and against
//! every token, so neither the timing nor the length of a guess says how
//! much of it was right.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The largest token file read.
const MAX_FILE_BYTES: u64 = 64 << 10;

/// The tokens that admit a request.
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    /// Reads one token a line; blank lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> anyhow::Result<Tokens> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .with_context(|| format!("reading the token file `{}`", path.display()))?;
        anyhow::ensure!(
            text.len() as u64 <= MAX_FILE_BYTES,
            "the token file `{}` is longer than {MAX_FILE_BYTES} bytes",
            path.display()
        );
        Tokens::parse(&text).with_context(|| format!("in the token file `{}`", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Tokens> {
        let digests: Vec<[u8; 32]> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|token| Sha256::digest(token.as_bytes()).into())
            .collect();
        anyhow::ensure!(!digests.is_empty(), "no tokens");
        Ok(Tokens { digests })
    }

    /// Whether an `Authorization` header carries one of the tokens.
    pub fn admit(&self, header: Option<&HeaderValue>) -> bool {
        let Some(token) = header.and_then(|value| bearer(value.as_bytes())) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut admitted = subtle::Choice::from(0);
        for known in &self.digests {
            admitted |= known[..].ct_eq(&digest[..]);
        }
        admitted.into()
    }
}

/// The token of `Bearer TOKEN` (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listed_bearer_token_is_admitted() {
        let tokens = Tokens::parse("# platform A\nalpha-123\n\n  beta-456  \n").unwrap();
        let admit = |value: &str| tokens.admit(Some(&HeaderValue::from_str(value).unwrap()));
        assert!(admit("Bearer alpha-123"));
        assert!(admit("bearer beta-456"));
        assert!(!admit("Bearer alpha-12"));
        assert!(!admit("Bearer alpha-1234"));
        assert!(!admit("Basic alpha-123"));
        assert!(!admit("Bearer "));
        assert!(!admit("alpha-123"));
        assert!(!tokens.admit(None));
    }

    #[test]
    fn a_file_without_tokens_is_refused() {
        assert!(Tokens::parse("# nothing\n\n").is_err());
    }
}
