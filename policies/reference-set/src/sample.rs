//! Seeded generators of flow records, spread over every rule of the
//! reference set: vocabulary words uniformly, numbers around every
//! threshold, bureau ids and licences both in and out of the registry.
//!
//! The same seed always gives the same records, so benchmarks and
//! agreement tests are repeatable.

use flowgate_sdk::*;

/// A small, fast, seeded generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const SUBJECTS: &[u64] = &[0, 1, 5, 9_999, 10_000, 12_000, 99_999, 100_000, 300_000, 999_999, 1_000_000, 5_000_000];
const KS: &[u32] = &[0, 5, 49, 50, 100];
const RETENTION: &[u32] = &[0, 30, 90, 91, 180, 365, 366, 1095, 1825, 3650];
const COVERAGE: &[f64] = &[1.0, 1.0, 0.999, 0.5, 0.1, 0.0];
const DESTINATIONS: &[&str] = &["CN", "CN", "CN", "SG", "US", "DE", "JP", "HK"];
const BUREAUS: &[(&str, &str)] = &[
    ("baihang", "PBOC-CR-2018-001"),
    ("pudao", "PBOC-CR-2020-002"),
    ("qiantang", "PBOC-CR-2024-003"),
    ("baihang", "PBOC-CR-2020-002"),
    ("shadow-credit", "NONE"),
    ("", ""),
];
const PLATFORMS: &[(&str, Sector)] = &[
    ("alipay", Sector::Payments),
    ("taobao", Sector::Ecommerce),
    ("didi", Sector::RideHailing),
    ("meituan", Sector::FoodDelivery),
    ("huabei", Sector::ConsumerCredit),
    ("weibo", Sector::Social),
];

/// `count` records from `seed`, with ids `{seed}-{n}`.
pub fn flows(seed: u64, count: usize) -> Vec<FlowRecord> {
    let mut rng = Rng::new(seed);
    (0..count).map(|n| flow(&mut rng, format!("{seed}-{n}"))).collect()
}

/// One record.
pub fn flow(rng: &mut Rng, id: String) -> FlowRecord {
    let mut categories = Categories::default();
    for _ in 0..1 + rng.below(3) {
        categories.insert(rng.pick(Category::ALL));
    }
    let (platform, sector) = rng.pick(PLATFORMS);
    let (bureau, licence) = rng.pick(BUREAUS);
    let destination = rng.pick(DESTINATIONS).as_bytes();
    let purpose = rng.pick(Purpose::ALL);
    FlowRecord {
        id,
        regime: if rng.chance(85) { Regime::Pipl } else { Regime::Gdpr },
        platform: Platform { id: platform.into(), sector, ciio: rng.chance(10) },
        action: rng.pick(Action::ALL),
        data: Data {
            categories,
            dsl_class: rng.pick(DslClass::ALL),
            important_notified: rng.chance(50),
            credit_information: rng.chance(30),
            deidentification: rng.pick(Deidentification::ALL),
            k: rng.pick(KS),
        },
        purpose,
        original_purpose: if rng.chance(60) { None } else { Some(rng.pick(Purpose::ALL)) },
        lawful_basis: rng.pick(LawfulBasis::ALL),
        consent: Consent {
            state: if rng.chance(60) { ConsentState::Given } else { rng.pick(ConsentState::ALL) },
            kind: rng.pick(ConsentKind::ALL),
            covers_purpose: rng.chance(70),
            covers_recipient: rng.chance(70),
        },
        recipient: Recipient { kind: rng.pick(RecipientKind::ALL), id: bureau.into(), licence: licence.into() },
        destination: CountryCode::new([destination[0], destination[1]]).expect("valid code"),
        volume: Volume {
            subjects: rng.pick(SUBJECTS),
            ytd_export_subjects: rng.pick(SUBJECTS),
            ytd_export_sensitive_subjects: rng.pick(SUBJECTS),
        },
        export_mechanism: rng.pick(ExportMechanism::ALL),
        impact_assessment: rng.chance(70),
        notice_given: rng.chance(70),
        retention_days: rng.pick(RETENTION),
        report_coverage: rng.pick(COVERAGE),
        automated_decision: rng.chance(30),
        price_differentiated: rng.chance(15),
    }
}
