"""Seeded flow records for the tests: spread over every word of the
vocabulary and every threshold of the reference policies, some fields left
out (so defaults are taken), and a share of invalid records whose every
fault Arrow can carry in ``flowgate.FLOW_SCHEMA`` (an unknown word, a number
out of range, a missing required field, a long string...), so the very same
records go through the CLI, ``decide``, ``decide_batch`` and Spark."""

import random

REGIMES = ["pipl", "gdpr"]
SECTORS = ["ecommerce", "payments", "ride_hailing", "food_delivery", "consumer_credit", "social", "other"]
ACTIONS = ["collect", "access", "use", "share", "entrust", "disclose", "export", "retain", "delete"]
CATEGORIES = [
    "identity", "contact", "device_id", "location", "transaction", "payment_account", "loan_record",
    "credit_score", "income", "biometric", "health", "religion", "minor", "non_personal",
]
DSL_CLASSES = ["general", "important", "core"]
DEIDENTIFICATION = ["identified", "pseudonymised", "aggregated", "anonymised"]
PURPOSES = [
    "service", "contract", "payment", "credit_assessment", "fraud_prevention", "marketing",
    "personalised_ads", "pricing", "research", "regulatory_reporting", "statistics",
]
BASES = [
    "consent", "contract", "hr", "statutory_duty", "emergency", "news", "public_disclosed", "other_law",
    "legitimate_interest", "none",
]
CONSENT_STATES = ["given", "withdrawn", "refused", "expired", "none"]
CONSENT_KINDS = ["none", "general", "separate", "written", "guardian"]
RECIPIENTS = [
    "self", "processor", "third_party", "affiliate", "financial_institution", "credit_bureau", "central_bank",
    "state_organ", "regulator_jv", "public", "overseas", "foreign_authority",
]
MECHANISMS = [
    "none", "security_assessment", "standard_contract", "certification", "exempt_contract", "exempt_hr",
    "exempt_emergency", "exempt_transit",
]
SUBJECTS = [0, 1, 5, 9_999, 10_000, 12_000, 99_999, 100_000, 300_000, 999_999, 1_000_000, 5_000_000]
KS = [0, 5, 49, 50, 100]
RETENTION = [0, 30, 90, 91, 180, 365, 366, 1095, 1825, 3650]
COVERAGE = [1.0, 1.0, 0.999, 0.5, 0.1, 0.0]
DESTINATIONS = ["CN", "CN", "CN", "SG", "US", "DE", "JP", "HK"]
BUREAUS = [
    ("baihang", "PBOC-CR-2018-001"), ("pudao", "PBOC-CR-2020-002"), ("qiantang", "PBOC-CR-2024-003"),
    ("baihang", "PBOC-CR-2020-002"), ("shadow-credit", "NONE"), ("", ""),
]
PLATFORMS = [
    ("alipay", "payments"), ("taobao", "ecommerce"), ("didi", "ride_hailing"), ("meituan", "food_delivery"),
    ("huabei", "consumer_credit"), ("weibo", "social"),
]

# Faults Arrow can carry in FLOW_SCHEMA, each named by the field it breaks.
FAULTS = [
    ("action", lambda r: r.update(action="sell")),
    ("purpose", lambda r: r.update(purpose="resale")),
    ("regime", lambda r: r.update(regime="ccpa")),
    ("platform.sector", lambda r: r["platform"].update(sector="mining")),
    ("data.categories", lambda r: r["data"].update(categories=["genome"])),
    ("data.categories", lambda r: r["data"].update(categories=[])),
    ("data.k", lambda r: r["data"].update(k=-1)),
    ("data.k", lambda r: r["data"].update(k=2**32)),
    ("retention_days", lambda r: r.update(retention_days=-5)),
    ("retention_days", lambda r: r.update(retention_days=2**40)),
    ("volume.subjects", lambda r: r.setdefault("volume", {}).update(subjects=-1)),
    ("report_coverage", lambda r: r.update(report_coverage=1.5)),
    ("report_coverage", lambda r: r.update(report_coverage=-0.25)),
    ("destination", lambda r: r.update(destination="cn")),
    ("destination", lambda r: r.update(destination="CHN")),
    ("id", lambda r: r.update(id="x" * 1025)),
    ("recipient.licence", lambda r: r.setdefault("recipient", {}).update(licence="L" * 2000)),
    ("id", lambda r: r.pop("id")),
    ("action", lambda r: r.pop("action")),
    ("platform", lambda r: r.pop("platform")),
    ("platform.id", lambda r: r["platform"].pop("id")),
    ("data.categories", lambda r: r["data"].pop("categories")),
    ("consent.kind", lambda r: r.setdefault("consent", {}).update(kind="implied")),
    ("export_mechanism", lambda r: r.update(export_mechanism="handshake")),
]


def record(rng, n):
    """One valid record, with some optional fields left out."""
    platform, sector = rng.choice(PLATFORMS)
    bureau, licence = rng.choice(BUREAUS)
    categories = [rng.choice(CATEGORIES) for _ in range(1 + rng.randrange(3))]
    flow = {
        "id": f"g-{n}",
        "regime": "pipl" if rng.random() < 0.85 else "gdpr",
        "platform": {"id": platform, "sector": sector, "ciio": rng.random() < 0.1},
        "action": rng.choice(ACTIONS),
        "data": {
            "categories": categories,
            "dsl_class": rng.choice(DSL_CLASSES),
            "important_notified": rng.random() < 0.5,
            "credit_information": rng.random() < 0.3,
            "deidentification": rng.choice(DEIDENTIFICATION),
            "k": rng.choice(KS),
        },
        "purpose": rng.choice(PURPOSES),
        "original_purpose": rng.choice(PURPOSES),
        "lawful_basis": rng.choice(BASES),
        "consent": {
            "state": "given" if rng.random() < 0.6 else rng.choice(CONSENT_STATES),
            "kind": rng.choice(CONSENT_KINDS),
            "covers_purpose": rng.random() < 0.7,
            "covers_recipient": rng.random() < 0.7,
        },
        "recipient": {"kind": rng.choice(RECIPIENTS), "id": bureau, "licence": licence},
        "destination": rng.choice(DESTINATIONS),
        "volume": {
            "subjects": rng.choice(SUBJECTS),
            "ytd_export_subjects": rng.choice(SUBJECTS),
            "ytd_export_sensitive_subjects": rng.choice(SUBJECTS),
        },
        "export_mechanism": rng.choice(MECHANISMS),
        "impact_assessment": rng.random() < 0.7,
        "notice_given": rng.random() < 0.7,
        "retention_days": rng.choice(RETENTION),
        "report_coverage": rng.choice(COVERAGE),
        "automated_decision": rng.random() < 0.3,
        "price_differentiated": rng.random() < 0.15,
    }
    # Leave fields out, at every level, so defaults are taken.
    for key in ["regime", "original_purpose", "lawful_basis", "consent", "recipient", "destination", "volume",
                "export_mechanism", "impact_assessment", "notice_given", "retention_days", "report_coverage",
                "automated_decision", "price_differentiated"]:
        if rng.random() < 0.15:
            flow.pop(key)
    for group in ["platform", "data", "consent", "recipient", "volume"]:
        if group in flow:
            for key in list(flow[group]):
                if key not in ("id", "categories") and rng.random() < 0.1:
                    flow[group].pop(key)
    return flow


def generate(seed, count, invalid_share=0.05):
    """``count`` records from ``seed``: (records, {index: field broken})."""
    rng = random.Random(seed)
    records, broken = [], {}
    for n in range(count):
        flow = record(rng, n)
        if rng.random() < invalid_share:
            field, fault = FAULTS[len(broken) % len(FAULTS)]
            fault(flow)
            broken[n] = field
        records.append(flow)
    return records, broken
