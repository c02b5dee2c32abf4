//! Bearer tokens (`--token-file`): one token a line; a request must carry
//! one of them in `Authorization: Bearer TOKEN`.
//!
//! Tokens are compared as SHA-256 digests, in constant time and against
//! every token, so neither the timing nor the length of a guess says how
//! much of it was right.
//!
//! A token also names its client to the policies' sandboxes: requests with
//! different tokens are different tenants ([`Caller`]), so no policy
//! instance ever holds two clients' records, even when one client's
//! records claim another's `platform.id`.
//!
//! The file is a secret: it must be a regular file that only its owner
//! (the host's user, or root) can read or write, mode 0600 or stricter;
//! it may be reached through links (Kubernetes mounts Secrets as links
//! into a directory it swaps atomically), and the file they lead to is the
//! one checked. While serving it is read again every second: a token
//! removed from it is refused from the next request on. A file that can no
//! longer be used (unreadable, no tokens, a mode others can read) is
//! reported and the tokens in force stay, as a broken trust file leaves
//! the trust in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flowgate::{FileError, FileProblem};
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
    /// Reads one token a line from `path` (through links; see the module
    /// docs); blank lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> anyhow::Result<Tokens> {
        let shown = path.display();
        let bytes = flowgate::read_through_links(path, MAX_FILE_BYTES, true).map_err(|err| match err {
            FileError::Refused { problem: FileProblem::Permissive { mode, .. }, .. } => anyhow::anyhow!(
                "the token file `{shown}` has mode {mode:o}: only its owner may read or write it; run `chmod 600 {shown}`"
            ),
            err => anyhow::Error::from(err).context(format!("the token file `{shown}` cannot be used")),
        })?;
        Tokens::parse(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
            anyhow::anyhow!("the token file `{shown}` holds no token (one a line; `#` starts a comment)")
        })
    }

    fn parse(text: &str) -> Option<Tokens> {
        let digests: Vec<[u8; 32]> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|token| Sha256::digest(token.as_bytes()).into())
            .collect();
        (!digests.is_empty()).then_some(Tokens { digests })
    }

    /// The client an `Authorization` header names, if it carries one of
    /// the tokens.
    pub fn admit(&self, header: Option<&HeaderValue>) -> Option<Caller> {
        let token = header.and_then(|value| bearer(value.as_bytes()))?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut admitted = subtle::Choice::from(0);
        for known in &self.digests {
            admitted |= known[..].ct_eq(&digest[..]);
        }
        bool::from(admitted).then(|| Caller::of(&digest))
    }

    /// Whether the two hold the same tokens.
    fn same_as(&self, other: &Tokens) -> bool {
        self.digests == other.digests
    }
}

/// Who a request comes from, as the tenant key its records are decided
/// under ([`flowgate::Host::decide_pinned`]): `token:` and the first 16
/// bytes of its token's SHA-256 in hex (never the token itself), or empty
/// when the server takes no tokens and cannot tell clients apart.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Caller(Arc<str>);

impl Caller {
    fn of(digest: &[u8; 32]) -> Caller {
        Caller(format!("token:{}", flowgate::transparency::hex::encode(&digest[..16])).into())
    }

    /// The tenant key.
    pub fn key(&self) -> &str {
        &self.0
    }
}

/// The token file, followed while serving.
pub struct TokenFile {
    path: PathBuf,
    current: Mutex<Arc<Tokens>>,
    /// Why the file was last refused, so it is reported once.
    problem: Mutex<Option<String>>,
}

impl TokenFile {
    /// Reads the tokens from `path`; the file must be usable at start.
    pub fn open(path: &Path) -> anyhow::Result<TokenFile> {
        let tokens = Tokens::from_file(path)?;
        Ok(TokenFile { path: path.to_owned(), current: Mutex::new(Arc::new(tokens)), problem: Mutex::new(None) })
    }

    /// The tokens in force.
    pub fn tokens(&self) -> Arc<Tokens> {
        Arc::clone(&lock(&self.current))
    }

    /// Reads the file again; returns what to report, if anything: that the
    /// tokens changed, or (once per problem) why the file was refused.
    pub fn recheck(&self) -> Option<String> {
        match Tokens::from_file(&self.path) {
            Ok(tokens) => {
                *lock(&self.problem) = None;
                let mut current = lock(&self.current);
                if current.same_as(&tokens) {
                    return None;
                }
                *current = Arc::new(tokens);
                Some(format!("token file `{}` changed: {} tokens in force", self.path.display(), current.digests.len()))
            }
            Err(err) => {
                let reason = format!("{err:#}; the tokens in force stay");
                let mut problem = lock(&self.problem);
                if problem.as_ref() == Some(&reason) {
                    return None;
                }
                *problem = Some(reason.clone());
                Some(reason)
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let (alpha, beta) = (admit("Bearer alpha-123").unwrap(), admit("bearer beta-456").unwrap());
        // Each token is a client of its own, named without the token.
        assert_ne!(alpha, beta);
        assert_eq!(admit("Bearer alpha-123"), Some(alpha.clone()));
        assert!(alpha.key().starts_with("token:") && alpha.key().len() == 6 + 32, "{alpha:?}");
        assert!(!alpha.key().contains("alpha"));
        assert!(admit("Bearer alpha-12").is_none());
        assert!(admit("Bearer alpha-1234").is_none());
        assert!(admit("Basic alpha-123").is_none());
        assert!(admit("Bearer ").is_none());
        assert!(admit("alpha-123").is_none());
        assert!(tokens.admit(None).is_none());
    }

    #[test]
    fn a_file_without_tokens_is_refused() {
        assert!(Tokens::parse("# nothing\n\n").is_none());
    }
}
