//! The closed vocabularies of the flow record and the decision.
//!
//! Every word is lower snake case, exactly as in the spec. Each enum knows its
//! words (`as_str`), its wire code (`code`, the declaration index) and all its
//! members (`ALL`), so the JSON form, the binary form and error messages come
//! from one declaration.
//!
//! Wire codes are private to one build: a policy declares its words to the
//! host by name (the schema of [`crate::abi`]), and the host translates its
//! own codes to the policy's. So a word can be added here, anywhere in a
//! list, without rebuilding every policy; what a policy that lacks a word
//! sees is documented in `docs/flow-record.md`, "A vocabulary that grows".
//!
//! Two test-only features build the SDK as another version would be: the
//! feature `older-vocabulary` without the category `religion`, and
//! `newer-vocabulary` with a category `genetic` before all others, so every
//! later code moves. The host's tests run policies built with each
//! (`tests/all/vocabulary.rs`).

use std::fmt;

/// Declares a vocabulary enum: serde names, wire codes and `Display` from one list.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal $(if $cfg:meta)?, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $(#[cfg($cfg)])? #[doc = concat!("`", $word, "`")] #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every word of this vocabulary, in declaration (and wire code) order.
            pub const ALL: &'static [$name] = &[$( $(#[cfg($cfg)])? $name::$variant ),+];

            /// The word as it appears in JSON.
            pub const fn as_str(self) -> &'static str {
                match self { $( $(#[cfg($cfg)])? $name::$variant => $word ),+ }
            }

            /// The compact code used on the Wasm boundary.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The word for a wire code, if the code is one.
            pub fn from_code(code: u8) -> Option<Self> {
                Self::ALL.get(usize::from(code)).copied()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Legal regime the flow falls under.
    pub enum Regime {
        #[default]
        Pipl = "pipl",
        Gdpr = "gdpr",
    }
}

vocabulary! {
    /// Sector of the platform proposing the flow.
    pub enum Sector {
        Ecommerce = "ecommerce",
        Payments = "payments",
        RideHailing = "ride_hailing",
        FoodDelivery = "food_delivery",
        ConsumerCredit = "consumer_credit",
        Social = "social",
        #[default]
        Other = "other",
    }
}

vocabulary! {
    /// What the platform proposes to do with the data.
    pub enum Action {
        #[default]
        Collect = "collect",
        Access = "access",
        Use = "use",
        /// Provide to another processor (PIPL Art. 23).
        Share = "share",
        /// Hand to a processor acting on our behalf (PIPL Art. 21).
        Entrust = "entrust",
        /// Make public (PIPL Art. 25).
        Disclose = "disclose",
        /// The data leaves the jurisdiction (PIPL Art. 38).
        Export = "export",
        Retain = "retain",
        Delete = "delete",
    }
}

vocabulary! {
    /// A category of data carried by the flow.
    pub enum Category {
        Genetic = "genetic" if feature = "newer-vocabulary",
        #[default]
        Identity = "identity",
        Contact = "contact",
        DeviceId = "device_id",
        Location = "location",
        Transaction = "transaction",
        PaymentAccount = "payment_account",
        LoanRecord = "loan_record",
        CreditScore = "credit_score",
        Income = "income",
        Biometric = "biometric",
        Health = "health",
        Religion = "religion" if not(feature = "older-vocabulary"),
        /// Data of a child under 14.
        Minor = "minor",
        NonPersonal = "non_personal",
    }
}

vocabulary! {
    /// Data Security Law class.
    pub enum DslClass {
        #[default]
        General = "general",
        Important = "important",
        Core = "core",
    }
}

vocabulary! {
    /// How far the data has been de-identified.
    pub enum Deidentification {
        #[default]
        Identified = "identified",
        Pseudonymised = "pseudonymised",
        Aggregated = "aggregated",
        Anonymised = "anonymised",
    }
}

vocabulary! {
    /// Why the data is processed.
    pub enum Purpose {
        #[default]
        Service = "service",
        Contract = "contract",
        Payment = "payment",
        CreditAssessment = "credit_assessment",
        FraudPrevention = "fraud_prevention",
        Marketing = "marketing",
        PersonalisedAds = "personalised_ads",
        Pricing = "pricing",
        Research = "research",
        RegulatoryReporting = "regulatory_reporting",
        Statistics = "statistics",
    }
}

vocabulary! {
    /// The legal basis the platform relies on.
    pub enum LawfulBasis {
        Consent = "consent",
        Contract = "contract",
        Hr = "hr",
        StatutoryDuty = "statutory_duty",
        Emergency = "emergency",
        News = "news",
        PublicDisclosed = "public_disclosed",
        OtherLaw = "other_law",
        LegitimateInterest = "legitimate_interest",
        #[default]
        None = "none",
    }
}

vocabulary! {
    /// Whether the individual's consent is in force.
    pub enum ConsentState {
        Given = "given",
        Withdrawn = "withdrawn",
        Refused = "refused",
        Expired = "expired",
        #[default]
        None = "none",
    }
}

vocabulary! {
    /// The form the consent took.
    pub enum ConsentKind {
        #[default]
        None = "none",
        General = "general",
        Separate = "separate",
        Written = "written",
        Guardian = "guardian",
    }
}

vocabulary! {
    /// Who receives the data.
    pub enum RecipientKind {
        #[default]
        SelfOwned = "self",
        Processor = "processor",
        ThirdParty = "third_party",
        Affiliate = "affiliate",
        FinancialInstitution = "financial_institution",
        CreditBureau = "credit_bureau",
        CentralBank = "central_bank",
        StateOrgan = "state_organ",
        RegulatorJv = "regulator_jv",
        Public = "public",
        Overseas = "overseas",
        ForeignAuthority = "foreign_authority",
    }
}

vocabulary! {
    /// The legal mechanism an export relies on.
    pub enum ExportMechanism {
        #[default]
        None = "none",
        SecurityAssessment = "security_assessment",
        StandardContract = "standard_contract",
        Certification = "certification",
        ExemptContract = "exempt_contract",
        ExemptHr = "exempt_hr",
        ExemptEmergency = "exempt_emergency",
        ExemptTransit = "exempt_transit",
    }
}

impl ExportMechanism {
    /// One of the `exempt_*` mechanisms (2024 Provisions Art. 5): thresholds do not apply.
    pub const fn is_exempt(self) -> bool {
        matches!(self, Self::ExemptContract | Self::ExemptHr | Self::ExemptEmergency | Self::ExemptTransit)
    }
}

vocabulary! {
    /// A policy's or the host's answer.
    pub enum Effect {
        #[default]
        Allow = "allow",
        AllowWithObligations = "allow_with_obligations",
        Deny = "deny",
        NotApplicable = "not_applicable",
    }
}

vocabulary! {
    /// What would make a denied flow pass on retry.
    ///
    /// Declared in alphabetical order: decisions list remedies sorted, and the
    /// derived `Ord` is that order.
    pub enum Remedy {
        #[default]
        Aggregate = "aggregate",
        ConductImpactAssessment = "conduct_impact_assessment",
        GiveNotice = "give_notice",
        ObtainConsent = "obtain_consent",
        ObtainGuardianConsent = "obtain_guardian_consent",
        ObtainSeparateConsent = "obtain_separate_consent",
        Pseudonymise = "pseudonymise",
        RouteViaCreditBureau = "route_via_credit_bureau",
        SecurityAssessmentRequired = "security_assessment_required",
        StandardContractOrCertificationRequired = "standard_contract_or_certification_required",
    }
}

vocabulary! {
    /// The kind of an obligation, without its parameter.
    ///
    /// Declared in alphabetical order: decisions list obligations sorted by kind.
    pub enum ObligationKind {
        #[default]
        Aggregate = "aggregate",
        Anonymise = "anonymise",
        EncryptInTransit = "encrypt_in_transit",
        FlagIncompleteReport = "flag_incomplete_report",
        LimitRetention = "limit_retention",
        LogToRegulator = "log_to_regulator",
        NotifySubject = "notify_subject",
        OfferNonPersonalisedOption = "offer_non_personalised_option",
        Pseudonymise = "pseudonymise",
    }
}

impl ObligationKind {
    /// Whether an obligation of this kind carries a parameter
    /// (`aggregate`: `k`, `limit_retention`: `days`).
    pub const fn takes_parameter(self) -> bool {
        matches!(self, Self::Aggregate | Self::LimitRetention)
    }
}
