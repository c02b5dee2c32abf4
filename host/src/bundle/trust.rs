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
//! A key is its public key: listed under several ids, it is revoked or
//! expired if any of its entries says so, whatever the order of the
//! entries, and a grant accepts it under any of its ids. Names and grant
//! patterns that no policy name could match (upper case, `_`, spaces) are
//! refused; those that match none of the loaded policies are reported
//! ([`TrustPolicy::unmatched`]). Grant patterns are matched in time linear in
//! the pattern and the name together.
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

/// An entry of a trust file that names none of the policies it was
/// checked against ([`TrustPolicy::unmatched`]): a typo, or a policy that
/// is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnmatchedEntry {
    /// A `required` name.
    #[error("`required` names `{0}`, which is not among the policies")]
    Required(String),
    /// A `[minimum]` entry.
    #[error("[minimum] names `{0}`, which is not among the policies")]
    Minimum(String),
    /// A grant's pattern.
    #[error("grant {grant}: `{pattern}` matches none of the policies")]
    Grant {
        /// Which grant (1-based, in trust file order).
        grant: usize,
        /// The name or glob.
        pattern: String,
    },
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
        // Operators deliver it through links (Kubernetes ConfigMaps): the file they lead to is checked.
        let bytes = fs::read_through_links(path, MAX_TRUST_FILE_BYTES, false)?;
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
            if let Some(pattern) = entry.policies.iter().find(|pattern| !could_match_a_policy(pattern)) {
                return Err(bad(format!(
                    "grant {grant}: `{pattern}` could match no policy ({NAME_RULE}, and `*` in a glob)"
                )));
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
            if !could_name_a_policy(&name) {
                return Err(bad(format!("[minimum] entry `{name}` could name no policy ({NAME_RULE})")));
            }
            let parsed = semver::Version::parse(&version)
                .map_err(|_| bad(format!("minimum of `{name}`: `{version}` is not a semantic version")))?;
            minimum.insert(name, parsed);
        }
        if let Some(name) = file.required.iter().find(|name| !could_name_a_policy(name)) {
            return Err(bad(format!("`required` entry `{name}` could name no policy ({NAME_RULE})")));
        }
        Ok(TrustPolicy { required: file.required, keys, grants, minimum, digest: Digest::of(text.as_bytes()) })
    }

    /// What this trust file names that none of `policies` is: `[minimum]`
    /// and `required` entries, and grant patterns that match none of them.
    /// Each is a typo or a policy that is not there: the CLI reports them
    /// at start, and `flowgate verify --strict` refuses them.
    pub fn unmatched<'a>(&self, policies: impl IntoIterator<Item = &'a str> + Clone) -> Vec<UnmatchedEntry> {
        let absent = |name: &str| !policies.clone().into_iter().any(|policy| policy == name);
        let mut unmatched: Vec<UnmatchedEntry> = self
            .required
            .iter()
            .filter(|name| absent(name))
            .map(|name| UnmatchedEntry::Required(name.clone()))
            .collect();
        unmatched
            .extend(self.minimum.keys().filter(|name| absent(name)).map(|name| UnmatchedEntry::Minimum(name.clone())));
        for (n, grant) in self.grants.iter().enumerate() {
            for pattern in &grant.policies {
                if !policies.clone().into_iter().any(|policy| glob(pattern, policy)) {
                    unmatched.push(UnmatchedEntry::Grant { grant: n + 1, pattern: pattern.clone() });
                }
            }
        }
        unmatched
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
        // The public keys whose signatures verify, each once.
        let mut signed: Vec<PublicKey> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        let mut tampered: Option<String> = None;
        for signature in &bundle.signatures {
            let Some(id) = self.id_of(&signature.key) else {
                unknown.push(signature.key.to_string());
                continue;
            };
            if !signature.verifies(&message) {
                // Changed files, or a signature of another bundle or version:
                // it counts for nothing, and says so if the grants fall short.
                tampered.get_or_insert_with(|| id.to_owned());
                continue;
            }
            if !signed.contains(&signature.key) {
                signed.push(signature.key);
            }
        }
        // A key is its public key: revoked or expired under any of its ids,
        // it signs nothing under any of them.
        let mut valid: Vec<PublicKey> = Vec::new();
        let mut lapsed: Vec<TrustError> = Vec::new();
        for key in signed {
            match self.lapse(&key, today) {
                Some(lapse) => lapsed.push(lapse),
                None => valid.push(key),
            }
        }
        let grants: Vec<(usize, &Grant)> =
            self.grants.iter().enumerate().filter(|(_, g)| g.policies.iter().any(|p| glob(p, name))).collect();
        if grants.is_empty() {
            return Err(TrustError::NotGranted { policy: name.clone() });
        }
        for (n, grant) in grants {
            // Distinct public keys the grant names under any of their ids:
            // one key listed under two ids counts once.
            let found = valid.iter().filter(|key| self.grant_accepts(grant, key)).count();
            if found < grant.threshold {
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
                    found,
                });
            }
        }
        self.check_version(bundle, serving)?;
        let mut signers: Vec<Signer> = valid
            .iter()
            .filter_map(|key| {
                // Named by its first id in alphabetical order, whatever the entries' order.
                let entry = self.entries(key).min_by(|a, b| a.id.cmp(&b.id))?;
                Some(Signer { id: entry.id.clone(), holder: entry.holder.clone() })
            })
            .collect();
        signers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(signers)
    }

    /// Every entry listing `key`, whatever its id.
    fn entries<'a>(&'a self, key: &PublicKey) -> impl Iterator<Item = &'a TrustedKey> + 'a {
        let key = *key;
        self.keys.iter().filter(move |entry| entry.public == key)
    }

    /// The first id (alphabetically) under which `key` is listed, if it is.
    fn id_of(&self, key: &PublicKey) -> Option<&str> {
        self.entries(key).map(|entry| entry.id.as_str()).min()
    }

    /// Why `key` signs nothing today, if it does not: any entry of it
    /// revoked (first), or any expired.
    fn lapse(&self, key: &PublicKey, today: (u16, u8, u8)) -> Option<TrustError> {
        let mut entries: Vec<&TrustedKey> = self.entries(key).collect();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(revoked) = entries.iter().find(|entry| entry.revoked) {
            return Some(TrustError::Revoked { key: revoked.id.clone() });
        }
        let expired = entries.iter().find(|entry| entry.not_after.is_some_and(|last| today > last))?;
        let (y, m, d) = expired.not_after.expect("checked");
        Some(TrustError::Expired { key: expired.id.clone(), not_after: format!("{y:04}-{m:02}-{d:02}") })
    }

    /// Whether `grant` names `key` under any of its ids.
    fn grant_accepts(&self, grant: &Grant, key: &PublicKey) -> bool {
        self.entries(key).any(|entry| grant.keys.contains(&entry.id))
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
            return Err(TrustError::Downgrade { offered: offered.clone(), floor, why: "a version already served" });
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
///
/// The classic two-cursor match: on a mismatch, only the last `*` seen
/// takes one more character, so the work is at most the product of the
/// two lengths (both short: names are at most 64 bytes, patterns 128), never
/// exponential however many stars a pattern holds.
fn glob(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and how much of the name it took.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((resume, taken)) = star {
            star = Some((resume, taken + 1));
            p = resume;
            n = taken + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// What a policy name may hold (`manifest.toml`'s rule).
const NAME_RULE: &str = "policy names are 1 to 64 lower-case letters, digits and hyphens";
/// The longest grant pattern: a policy name is at most 64 bytes.
const MAX_PATTERN_BYTES: usize = 128;

/// Whether `name` could be a policy's name.
fn could_name_a_policy(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `pattern` could match some policy's name.
fn could_match_a_policy(pattern: &str) -> bool {
    let fixed = pattern.bytes().filter(|&b| b != b'*').count();
    pattern.len() <= MAX_PATTERN_BYTES
        && fixed <= 64
        && pattern.bytes().all(|b| b == b'*' || b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
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
        assert!(glob("*", ""));
        assert!(glob("a*c*e", "abcde"));
        assert!(glob("a**e", "ae"));
        assert!(glob("*a*", "banana"));
        assert!(glob("*-*-*", "credit-via-bureau"));
        assert!(!glob("*-*-*-*", "credit-via-bureau"));
        assert!(!glob("credit-*", "cross-border"));
        assert!(!glob("lawful-basis", "lawful-basis-2"));
        assert!(!glob("lawful-basis-2", "lawful-basis"));
        assert!(glob("*-border", "cross-border"));
        assert!(!glob("*-border", "cross-borders"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn a_glob_with_many_stars_runs_in_linear_time() {
        // Backtracking into every star made this exponential: it did not
        // finish in 20 s. Matched by two cursors, it is a few thousand steps.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pattern = "*a".repeat(30) + "*b";
            let name = "a".repeat(64);
            for _ in 0..1000 {
                assert!(!glob(&pattern, &name));
                assert!(glob(&pattern, &(name.clone() + "b")));
            }
            let _ = done.send(());
        });
        // A thread stuck in an exponential match cannot be stopped: the test fails instead of hanging.
        finished.recv_timeout(std::time::Duration::from_secs(10)).expect("1,000 matches within 10 s");
    }

    #[test]
    fn names_no_policy_could_have_are_refused() {
        for (text, expected) in [
            ("[minimum]\nLawful-Basis = \"1.0.0\"\n", "could name no policy"),
            ("[minimum]\nlawful_basis = \"1.0.0\"\n", "could name no policy"),
            ("required = [\"lawful basis\"]\n", "could name no policy"),
            (
                "[[key]]\nid = \"k\"\npublic = \"ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"\nholder = \"h\"\n[[grant]]\npolicies = [\"Credit-*\"]\nkeys = [\"k\"]\n",
                "could match no policy",
            ),
        ] {
            let err = TrustPolicy::parse("t", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn entries_matching_no_policy_are_listed() {
        let text = "required = [\"lawful-basis\", \"gone\"]\n[minimum]\nlawful-basis = \"1.0.0\"\nlawful-basic = \"1.0.0\"\n[[key]]\nid = \"k\"\npublic = \"ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"\nholder = \"h\"\n[[grant]]\npolicies = [\"lawful-*\", \"credit-*\"]\nkeys = [\"k\"]\n";
        let trust = TrustPolicy::parse("t", text).unwrap();
        assert_eq!(
            trust.unmatched(["lawful-basis", "cross-border"]),
            [
                UnmatchedEntry::Required("gone".into()),
                UnmatchedEntry::Minimum("lawful-basic".into()),
                UnmatchedEntry::Grant { grant: 1, pattern: "credit-*".into() },
            ]
        );
        assert!(trust.unmatched(["lawful-basis", "gone", "lawful-basic", "credit-x"]).is_empty());
    }

    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(20_513), (2026, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }
}
