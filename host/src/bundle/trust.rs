//! The trust file: which regulators' keys may sign which policies, and
//! which policies must be present.
//!
//! The platform writes it as its regulators instruct. With a trust policy,
//! a bundle is verified before its module is even compiled; nothing is
//! fetched over the network, and nothing is ever skipped: an unsigned
//! bundle, a tampered one, one signed by an unknown, revoked or expired key
//! or by a key not granted for its name, one below its threshold, and a
//! downgrade are each refused with a message that says which.
//!
//! ```toml
//! required = ["lawful-basis", "credit-via-bureau"]
//!
//! [[key]]
//! id = "pboc-2026"
//! public = "ed25519:..."            # the line of pboc-2026.pub
//! holder = "People's Bank of China"
//! not_after = 2027-12-31            # optional: its last valid day (host's clock, UTC)
//! revoked = false                   # optional
//!
//! [[grant]]
//! policies = ["credit-*", "statutory-credit-reporting"]   # names or globs (`*`)
//! keys = ["pboc-2026", "cac-2026"]
//! threshold = 2                     # distinct public keys needed (default 1)
//!
//! [minimum]                         # optional: versions no bundle may go below
//! lawful-basis = "1.0.0"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::fs::{self, FileError};
use crate::model::{Digest, Signer};

use super::Bundle;
use super::keys::PublicKey;

/// Why a trust file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFileError {
    /// It could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// It is not a valid trust file.
    #[error("`{origin}`: invalid trust file: {problem}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong, with line and column where known.
        problem: String,
    },
}

/// Why a bundle does not meet the trust policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// It carries no signature at all.
    #[error("it is unsigned, and the trust file accepts only signed bundles")]
    Unsigned,
    /// A signature by a trusted key does not match the bundle's files:
    /// a file was changed after signing, or the signature was made for
    /// another bundle or version.
    #[error(
        "the signature of key `{key}` does not match this bundle's name, version and files: a file changed after it was signed (tampered with, or rebuilt; if you rebuilt it, sign it again with `flowgate sign --key {key}.key DIR`), or it was signed for another bundle"
    )]
    Tampered {
        /// The trust file's id of the key.
        key: String,
    },
    /// Every signature is by a key the trust file does not list.
    #[error("it is signed only by keys the trust file does not list ({keys})")]
    UnknownKeys {
        /// The keys, as `ed25519:...`.
        keys: String,
    },
    /// A signing key was revoked.
    #[error("key `{key}` that signed it is revoked")]
    Revoked {
        /// The key's id.
        key: String,
    },
    /// A signing key expired.
    #[error("key `{key}` that signed it expired after {not_after}")]
    Expired {
        /// The key's id.
        key: String,
        /// Its last valid day.
        not_after: String,
    },
    /// No grant of the trust file covers the policy's name.
    #[error("no grant of the trust file covers policy `{policy}`")]
    NotGranted {
        /// The policy's name.
        policy: String,
    },
    /// A grant that covers the policy is not met.
    #[error("grant {grant} needs {threshold} distinct keys of [{keys}] for `{policy}`; valid signatures by {found}")]
    BelowThreshold {
        /// The policy's name.
        policy: String,
        /// Which grant (1-based, in trust file order).
        grant: usize,
        /// Distinct keys needed.
        threshold: usize,
        /// The keys it accepts.
        keys: String,
        /// How many distinct accepted keys signed validly.
        found: usize,
    },
    /// A lower version than the one serving, or than the trust file's minimum.
    #[error("version {offered} is older than {floor} ({why}); a downgrade is refused")]
    Downgrade {
        /// The bundle's version.
        offered: String,
        /// The version it may not go below.
        floor: String,
        /// Where the floor comes from.
        why: &'static str,
    },
    /// The version is not a semantic version, so it cannot be ordered.
    #[error("version `{0}` is not a semantic version (such as `1.2.0`), so downgrades could not be told")]
    Unordered(String),
}

/// The largest trust file read.
const MAX_TRUST_FILE_BYTES: u64 = 1 << 20;

/// A parsed, checked trust file.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    required: Vec<String>,
    keys: Vec<TrustedKey>,
    grants: Vec<Grant>,
    minimum: BTreeMap<String, semver::Version>,
    digest: Digest,
}

#[derive(Debug, Clone)]
struct TrustedKey {
    id: String,
    public: PublicKey,
    holder: String,
    not_after: Option<(u16, u8, u8)>,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Grant {
    policies: Vec<String>,
    keys: Vec<String>,
    threshold: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default, rename = "key")]
    keys: Vec<KeyEntry>,
    #[serde(default, rename = "grant")]
    grants: Vec<GrantEntry>,
    #[serde(default)]
    minimum: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    public: String,
    holder: String,
    not_after: Option<toml::value::Datetime>,
    #[serde(default)]
    revoked: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantEntry {
    policies: Vec<String>,
    keys: Vec<String>,
    #[serde(default = "one")]
    threshold: usize,
}

fn one() -> usize {
    1
}

impl TrustPolicy {
    /// Reads and checks the trust file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<TrustPolicy, TrustFileError> {
        let path = path.as_ref();
        let bytes = fs::read_capped(path, MAX_TRUST_FILE_BYTES)?;
        let origin = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|_| TrustFileError::Invalid {
            origin: origin.clone(),
            problem: "the file is not UTF-8 text".into(),
        })?;
        TrustPolicy::parse(&origin, &text)
    }

    /// Parses and checks a trust file's text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<TrustPolicy, TrustFileError> {
        let bad = |problem: String| TrustFileError::Invalid { origin: origin.to_owned(), problem };
        let file: TrustFile = toml::from_str(text).map_err(|err| {
            let at = err.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            bad(match at {
                Some(line) => format!("line {line}: {}", err.message()),
                None => err.message().to_owned(),
            })
        })?;
        let mut keys = Vec::new();
        for entry in file.keys {
            if entry.id.is_empty() || keys.iter().any(|k: &TrustedKey| k.id == entry.id) {
                return Err(bad(format!("key id `{}` is empty or appears twice", entry.id)));
            }
            let public = PublicKey::parse(&entry.public)
                .ok_or_else(|| bad(format!("key `{}`: `public` is not `ed25519:` and 64 hex digits", entry.id)))?;
            let not_after = match entry.not_after {
                None => None,
                Some(datetime) => match (datetime.date, datetime.time) {
                    (Some(date), None) => Some((date.year, date.month, date.day)),
                    _ => return Err(bad(format!("key `{}`: `not_after` must be a date such as 2027-12-31", entry.id))),
                },
            };
            keys.push(TrustedKey { id: entry.id, public, holder: entry.holder, not_after, revoked: entry.revoked });
        }
        let mut grants = Vec::new();
        for (n, entry) in file.grants.into_iter().enumerate() {
            let grant = n + 1;
            if entry.policies.is_empty() || entry.policies.iter().any(String::is_empty) {
                return Err(bad(format!("grant {grant}: `policies` must name at least one policy or glob")));
            }
            if let Some(unknown) = entry.keys.iter().find(|id| !keys.iter().any(|k| k.id == **id)) {
                return Err(bad(format!("grant {grant} names key `{unknown}`, which no [[key]] defines")));
            }
            if entry.threshold == 0 || entry.threshold > entry.keys.len() {
                return Err(bad(format!(
                    "grant {grant}: `threshold` must be between 1 and the {} keys it names",
                    entry.keys.len()
                )));
            }
            grants.push(Grant { policies: entry.policies, keys: entry.keys, threshold: entry.threshold });
        }
        let mut minimum = BTreeMap::new();
        for (name, version) in file.minimum {
            let parsed = semver::Version::parse(&version)
                .map_err(|_| bad(format!("minimum of `{name}`: `{version}` is not a semantic version")))?;
            minimum.insert(name, parsed);
        }
        Ok(TrustPolicy { required: file.required, keys, grants, minimum, digest: Digest::of(text.as_bytes()) })
    }

    /// The policies that must be loaded, verified.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Whether `name` is required.
    pub fn requires(&self, name: &str) -> bool {
        self.required.iter().any(|required| required == name)
    }

    /// The digest of the trust file's text.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Checks `bundle` against this policy, today by the host's clock.
    /// `serving` is the version of the same policy that serves now, if any:
    /// nothing older may replace it.
    pub fn verify(&self, bundle: &Bundle, serving: Option<&str>) -> Result<Vec<Signer>, TrustError> {
        self.verify_on(bundle, serving, today())
    }

    fn verify_on(
        &self,
        bundle: &Bundle,
        serving: Option<&str>,
        today: (u16, u8, u8),
    ) -> Result<Vec<Signer>, TrustError> {
        let name = &bundle.manifest.name;
        if bundle.signatures.is_empty() {
            return Err(TrustError::Unsigned);
        }
        let message = bundle.signed_message();
        let mut valid: Vec<&TrustedKey> = Vec::new();
        let mut lapsed: Vec<TrustError> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        let mut tampered: Option<String> = None;
        for signature in &bundle.signatures {
            let Some(key) = self.keys.iter().find(|k| k.public == signature.key) else {
                unknown.push(signature.key.to_string());
                continue;
            };
            if !signature.verifies(&message) {
                // Changed files, or a signature of another bundle or version:
                // it counts for nothing, and says so if the grants fall short.
                tampered.get_or_insert_with(|| key.id.clone());
                continue;
            }
            if key.revoked {
                lapsed.push(TrustError::Revoked { key: key.id.clone() });
            } else if key.not_after.is_some_and(|last| today > last) {
                let (y, m, d) = key.not_after.expect("checked");
                lapsed.push(TrustError::Expired { key: key.id.clone(), not_after: format!("{y:04}-{m:02}-{d:02}") });
            } else if !valid.iter().any(|v| v.public == key.public) {
                valid.push(key);
            }
        }
        let grants: Vec<(usize, &Grant)> =
            self.grants.iter().enumerate().filter(|(_, g)| g.policies.iter().any(|p| glob(p, name))).collect();
        if grants.is_empty() {
            return Err(TrustError::NotGranted { policy: name.clone() });
        }
        for (n, grant) in grants {
            // Distinct public keys: one key listed under two ids counts once.
            let mut found: Vec<&PublicKey> = Vec::new();
            for key in valid.iter().filter(|k| grant.keys.contains(&k.id)) {
                if !found.contains(&&key.public) {
                    found.push(&key.public);
                }
            }
            if found.len() < grant.threshold {
                if let Some(key) = tampered.clone() {
                    return Err(TrustError::Tampered { key });
                }
                if let Some(lapse) = lapsed.first() {
                    return Err(lapse.clone());
                }
                if valid.is_empty() && !unknown.is_empty() {
                    return Err(TrustError::UnknownKeys { keys: unknown.join(", ") });
                }
                return Err(TrustError::BelowThreshold {
                    policy: name.clone(),
                    grant: n + 1,
                    threshold: grant.threshold,
                    keys: grant.keys.join(", "),
                    found: found.len(),
                });
            }
        }
        self.check_version(bundle, serving)?;
        let mut signers: Vec<Signer> =
            valid.iter().map(|k| Signer { id: k.id.clone(), holder: k.holder.clone() }).collect();
        signers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(signers)
    }

    fn check_version(&self, bundle: &Bundle, serving: Option<&str>) -> Result<(), TrustError> {
        let offered = &bundle.manifest.version;
        let version = semver::Version::parse(offered).map_err(|_| TrustError::Unordered(offered.clone()))?;
        if let Some(minimum) = self.minimum.get(&bundle.manifest.name)
            && version < *minimum
        {
            let floor = minimum.to_string();
            return Err(TrustError::Downgrade { offered: offered.clone(), floor, why: "the trust file's minimum" });
        }
        if let Some(serving) = serving.and_then(|s| semver::Version::parse(s).ok())
            && version < serving
        {
            let floor = serving.to_string();
            return Err(TrustError::Downgrade { offered: offered.clone(), floor, why: "the version serving" });
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&at| tail.is_char_boundary(at)).any(|at| glob(rest, &tail[at..]))
        }
    }
}

/// Today's date in UTC, by the host's clock.
fn today() -> (u16, u8, u8) {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    civil_date((seconds / 86_400) as i64)
}

/// The proleptic Gregorian date of a day number counted from 1970-01-01.
fn civil_date(days: i64) -> (u16, u8, u8) {
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names() {
        assert!(glob("credit-*", "credit-via-bureau"));
        assert!(glob("*", "anything"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("credit-*", "cross-border"));
        assert!(!glob("lawful-basis", "lawful-basis-2"));
        assert!(glob("*-border", "cross-border"));
    }

    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(20_513), (2026, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }
}
