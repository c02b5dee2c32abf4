//! A policy-set entry: written once each time the set of active policies
//! (or the host's vocabulary) changes, and named by every receipt after it.
//!
//! The old receipts repeated every applied policy's name, version and
//! 64-hex-digit digest in each decision: most of their 901 bytes. Here that
//! is said once, as its own leaf of the tree, and a receipt says "policy 3,
//! rule 2" and points at this entry by leaf index. A verifier holding a
//! receipt and its policy set (each with its inclusion proof against the
//! same checkpoint) can show everything the receipt says in words.
//!
//! It also carries the words of the host's vocabulary that receipts refer
//! to by number (obligation kinds, remedies): the SDK's own codes change
//! between builds (a word may be added anywhere), so the log must not rely
//! on them. Effects are the four of the format and need no table.
//!
//! Fields, after the type byte `0x02` (see `docs/receipts.md`): index, time (ms),
//! the set's content id (32 bytes), the host's version, the host's rule
//! names, the policies (name, version, module digest, rule names), the
//! obligation kinds (word, parameter name or empty), the remedies.

use crate::digest::Digest;
use crate::entry::{EntryError, POLICY_SET_V1};
use crate::wire::{Reader, put_string, put_uint};

/// The longest name, version, rule or word.
pub const MAX_NAME_BYTES: usize = 256;

/// One policy of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its module's digest (the bundle's Wasm module, SHA-256).
    pub digest: Digest,
    /// The rules receipts may name by number (rule `n` is `rules[n - 1]`).
    pub rules: Vec<String>,
}

/// An obligation kind of the host's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationWord {
    /// Its word, e.g. `aggregate`.
    pub word: String,
    /// The name of its parameter, e.g. `k`; empty for a kind without one.
    pub parameter: String,
}

/// The policy set receipts name: what decided them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySet {
    /// Its leaf index.
    pub index: u64,
    /// When it joined the log (ms since the Unix epoch).
    pub time_ms: u64,
    /// The host's content id of the set (what `flowgate policies` prints).
    pub id: Digest,
    /// The version of the host that decided (policy number 0, `flowgate`).
    pub host_version: String,
    /// The host's own rules (e.g. `no-policy-applied`), numbered from 1.
    pub host_rules: Vec<String>,
    /// The policies, numbered from 1 in this order.
    pub policies: Vec<PolicyEntry>,
    /// Obligation kinds, numbered from 0 in this order.
    pub obligations: Vec<ObligationWord>,
    /// Remedies, numbered from 0 in this order.
    pub remedies: Vec<String>,
}

impl PolicySet {
    /// Its bytes, type byte first.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(POLICY_SET_V1);
        put_uint(&mut out, self.index);
        put_uint(&mut out, self.time_ms);
        out.extend_from_slice(self.id.as_bytes());
        put_string(&mut out, &self.host_version);
        put_strings(&mut out, &self.host_rules);
        put_uint(&mut out, self.policies.len() as u64);
        for policy in &self.policies {
            put_string(&mut out, &policy.name);
            put_string(&mut out, &policy.version);
            out.extend_from_slice(policy.digest.as_bytes());
            put_strings(&mut out, &policy.rules);
        }
        put_uint(&mut out, self.obligations.len() as u64);
        for obligation in &self.obligations {
            put_string(&mut out, &obligation.word);
            put_string(&mut out, &obligation.parameter);
        }
        put_strings(&mut out, &self.remedies);
        out
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<PolicySet, EntryError> {
        let index = reader.uint("index")?;
        let time_ms = reader.uint("time_ms")?;
        let id = reader.digest("id")?;
        let host_version = reader.string("host_version", MAX_NAME_BYTES)?;
        let host_rules = read_strings(reader, "host_rules")?;
        // A policy is at least a name, a version, a digest and a rule count.
        let count = reader.count("policies", 35)?;
        let mut policies = Vec::with_capacity(count);
        for _ in 0..count {
            policies.push(PolicyEntry {
                name: reader.string("policy name", MAX_NAME_BYTES)?,
                version: reader.string("policy version", MAX_NAME_BYTES)?,
                digest: reader.digest("policy digest")?,
                rules: read_strings(reader, "policy rules")?,
            });
        }
        let count = reader.count("obligations", 2)?;
        let mut obligations = Vec::with_capacity(count);
        for _ in 0..count {
            obligations.push(ObligationWord {
                word: reader.string("obligation", MAX_NAME_BYTES)?,
                parameter: reader.string("obligation parameter", MAX_NAME_BYTES)?,
            });
        }
        let remedies = read_strings(reader, "remedies")?;
        Ok(PolicySet { index, time_ms, id, host_version, host_rules, policies, obligations, remedies })
    }

    /// The name and version of policy number `number` (0: the host).
    pub fn policy_name(&self, number: u32) -> Option<(&str, &str)> {
        match number {
            0 => Some(("flowgate", &self.host_version)),
            n => self.policies.get(n as usize - 1).map(|p| (p.name.as_str(), p.version.as_str())),
        }
    }

    /// The rule list of policy number `number` (0: the host's).
    pub fn rules(&self, number: u32) -> Option<&[String]> {
        match number {
            0 => Some(&self.host_rules),
            n => self.policies.get(n as usize - 1).map(|p| p.rules.as_slice()),
        }
    }
}

fn put_strings(out: &mut Vec<u8>, items: &[String]) {
    put_uint(out, items.len() as u64);
    for item in items {
        put_string(out, item);
    }
}

fn read_strings(reader: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, EntryError> {
    let count = reader.count(field, 1)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(reader.string(field, MAX_NAME_BYTES)?);
    }
    Ok(items)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::entry::Entry;

    /// The reference set as the host would write it (names, versions and
    /// rules from `policies/*/manifest.toml`, plus the host's
    /// `policy-fault`; the digests stand in for the modules').
    pub(crate) fn reference_set(index: u64) -> PolicySet {
        let policy = |name: &str, rules: &[&str]| PolicyEntry {
            name: name.into(),
            version: "1.0.0".into(),
            digest: Digest::of(name.as_bytes()),
            rules: rules.iter().map(|r| (*r).to_owned()).chain(["policy-fault".to_owned()]).collect(),
        };
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        PolicySet {
            index,
            time_ms: 1_796_000_000_000,
            id: Digest::of(b"reference set"),
            host_version: "0.1.0".into(),
            host_rules: words(&["no-policy-applied"]),
            policies: vec![
                policy("automated-decisions", &["price-discrimination", "major-impact-assessment", "opt-out"]),
                policy(
                    "credit-via-bureau",
                    &[
                        "no-direct-connection",
                        "unlicensed-bureau",
                        "bureau-consent",
                        "prohibited-categories",
                        "bureau-log",
                    ],
                ),
                policy(
                    "cross-border",
                    &[
                        "foreign-authority",
                        "export-assessment",
                        "export-separate-consent",
                        "security-assessment",
                        "standard-contract",
                        "export-log",
                    ],
                ),
                policy("important-data", &["core-data", "important-export", "important-export-log"]),
                policy("lawful-basis", &["deletion", "no-basis", "no-legitimate-interest", "consent-not-in-force"]),
                policy("purpose-minimisation", &["excess-categories", "retention-cap"]),
                policy("regulator-jv", &["anonymised", "identified"]),
                policy(
                    "sensitive-consent",
                    &["guardian-consent", "separate-consent", "notice", "impact-assessment", "encrypt-in-transit"],
                ),
                policy("statutory-credit-reporting", &["statutory-report", "incomplete-report"]),
                policy(
                    "third-party-provision",
                    &["provision-assessment", "share-separate-consent", "purpose-change", "notify-subject"],
                ),
            ],
            obligations: [
                ("aggregate", "k"),
                ("anonymise", ""),
                ("encrypt_in_transit", ""),
                ("flag_incomplete_report", ""),
                ("limit_retention", "days"),
                ("log_to_regulator", ""),
                ("notify_subject", ""),
                ("offer_non_personalised_option", ""),
                ("pseudonymise", ""),
            ]
            .iter()
            .map(|(word, parameter)| ObligationWord { word: (*word).into(), parameter: (*parameter).into() })
            .collect(),
            remedies: words(&[
                "aggregate",
                "conduct_impact_assessment",
                "give_notice",
                "obtain_consent",
                "obtain_guardian_consent",
                "obtain_separate_consent",
                "pseudonymise",
                "route_via_credit_bureau",
                "security_assessment_required",
                "standard_contract_or_certification_required",
            ]),
        }
    }

    #[test]
    fn a_policy_set_round_trips_exactly() {
        let set = reference_set(0);
        let bytes = set.encode();
        assert_eq!(bytes[0], POLICY_SET_V1);
        assert_eq!(Entry::decode(&bytes), Ok(Entry::PolicySet(set.clone())));
        // Written once, it costs less than two of the old receipts.
        assert!(bytes.len() < 1800, "{} bytes", bytes.len());
        assert_eq!(set.policy_name(0), Some(("flowgate", "0.1.0")));
        assert_eq!(set.policy_name(5), Some(("lawful-basis", "1.0.0")));
        assert_eq!(set.policy_name(11), None);
        assert_eq!(set.rules(5).unwrap()[1], "no-basis");
    }

    #[test]
    fn every_cut_and_every_extra_byte_is_refused() {
        let bytes = reference_set(3).encode();
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), Err(EntryError::TrailingBytes(1)));
    }
}
