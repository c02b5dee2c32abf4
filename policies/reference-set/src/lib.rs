//! The reference policy set of `docs/reference-policies.md`, ready to use.
//!
//! - [`bundles`]: the ten policies as Wasm bundles (manifest and module),
//!   built from `policies/<name>/` by this crate's build script and embedded,
//!   so the CLI and tests work without a separate build step;
//! - [`native`]: the same ten policies compiled natively and configured from
//!   the same manifests: the floor for benchmarks, and the other side of the
//!   native/Wasm agreement tests;
//! - [`sample`]: seeded generators of flow records spread over every rule.

use flowgate_sdk::{DynPolicy, Policy};

pub mod sample;

include!(concat!(env!("OUT_DIR"), "/bundles.rs"));

/// The reference bundles as `(name, manifest text, wasm bytes)`, in name order.
pub fn bundles() -> impl Iterator<Item = (&'static str, &'static str, &'static [u8])> {
    BUNDLES.iter().copied()
}

/// The manifest text of the reference policy `name`.
pub fn manifest(name: &str) -> Option<&'static str> {
    bundles().find(|(n, _, _)| *n == name).map(|(_, manifest, _)| manifest)
}

/// The ten policies compiled natively, each configured from its manifest, in name order.
pub fn native() -> Vec<(&'static str, Box<dyn DynPolicy>)> {
    bundles()
        .map(|(name, manifest, _)| {
            let config = config_json(manifest);
            let policy: Box<dyn DynPolicy> = match name {
                "automated-decisions" => configure::<automated_decisions::AutomatedDecisionsPolicy>(&config),
                "credit-via-bureau" => configure::<credit_via_bureau::CreditViaBureauPolicy>(&config),
                "cross-border" => configure::<cross_border::CrossBorderPolicy>(&config),
                "important-data" => configure::<important_data::ImportantDataPolicy>(&config),
                "lawful-basis" => configure::<lawful_basis::LawfulBasisPolicy>(&config),
                "purpose-minimisation" => configure::<purpose_minimisation::PurposeMinimisationPolicy>(&config),
                "regulator-jv" => configure::<regulator_jv::RegulatorJvPolicy>(&config),
                "sensitive-consent" => configure::<sensitive_consent::SensitiveConsentPolicy>(&config),
                "statutory-credit-reporting" => {
                    configure::<statutory_credit_reporting::StatutoryCreditReportingPolicy>(&config)
                }
                "third-party-provision" => configure::<third_party_provision::ThirdPartyProvisionPolicy>(&config),
                other => panic!("reference policy `{other}` has no native build listed here"),
            };
            (name, policy)
        })
        .collect()
}

fn configure<P: Policy>(config: &str) -> Box<dyn DynPolicy> {
    Box::new(P::from_config_json(config).expect("reference manifests configure their policies"))
}

/// The `[config]` table of a manifest, as JSON: what the policy is handed.
pub fn config_json(manifest: &str) -> String {
    let table: toml::Table = toml::from_str(manifest).expect("reference manifests are valid TOML");
    let config = table.get("config").cloned().unwrap_or(toml::Value::Table(Default::default()));
    serde_json::to_string(&config).expect("TOML is valid JSON")
}
