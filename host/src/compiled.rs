//! A policy compiled and checked: its module, its identity, its limits,
//! its pool of ready instances and its fault counters.
//!
//! Loading refuses anything that is not a Flowgate policy: any import (the
//! host offers none), a missing or mistyped export, another ABI version, a
//! start function or probe that faults, an invalid rule table, or a
//! configuration the policy rejects. Each refusal names the file and what
//! was expected.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::{ExternType, InstancePre, Linker, Module};

use flowgate_sdk::{ABI_VERSION, Answer, RuleId};

use crate::bundle::Bundle;
use crate::decision::Reason;
use crate::encoded::EncodedRecords;
use crate::error::Error;
use crate::fault::Fault;
use crate::instance::{Exports, GuestInstance};
use crate::sandbox::{Limits, Runtime, StoreState};
use crate::scope::Scope;

/// What identifies a loaded policy, and the reasons its rules give.
#[derive(Debug)]
pub struct PolicyInfo {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of its Wasm module, in hex.
    pub digest: String,
    /// Who wrote it.
    pub regulator: String,
    /// The articles it enforces.
    pub articles: Vec<String>,
    /// One reason per rule, indexed by rule id.
    pub(crate) reasons: Vec<Reason>,
}

impl PolicyInfo {
    /// The reason for `rule`, if the policy has it.
    pub fn reason(&self, rule: RuleId) -> Option<&Reason> {
        self.reasons.get(rule.index())
    }

    /// The names of the policy's rules, in rule table order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(Reason::rule)
    }

    /// Describes a policy that runs outside the sandbox (natively, in
    /// benchmarks and agreement tests), so its answers combine like any other.
    pub fn native(manifest: &crate::Manifest, rules: &[flowgate_sdk::Rule]) -> PolicyInfo {
        PolicyInfo {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: "native".into(),
            regulator: manifest.regulator.clone(),
            articles: manifest.articles.clone(),
            reasons: rules
                .iter()
                .map(|rule| Reason::new(&manifest.name, &manifest.version, rule.name, rule.article, rule.message))
                .collect(),
        }
    }

    /// The reason a fault gives: the policy, and what went wrong.
    pub(crate) fn fault_reason(&self, fault: &Fault) -> Reason {
        Reason::new(
            &self.name,
            &self.version,
            "policy-fault",
            "Flowgate fail-closed rule (flow-record.md, combining rule 1)",
            &format!("policy `{}` {fault}; the flow is denied to fail closed", self.name),
        )
    }
}

/// One rule as the module describes it (`flowgate_rules`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    name: String,
    article: String,
    message: String,
}

/// The exports the ABI requires, with their types as text for errors.
const REQUIRED_FUNCS: [(&str, &[wasmtime::ValType], &[wasmtime::ValType], &str); 5] = {
    use wasmtime::ValType::{I32, I64};
    [
        ("flowgate_abi_version", &[], &[I32], "a function `() -> i32`"),
        ("flowgate_buffer", &[I32], &[I32], "a function `(i32) -> i32`"),
        ("flowgate_rules", &[], &[I64], "a function `() -> i64`"),
        ("flowgate_init", &[I32], &[I64], "a function `(i32) -> i64`"),
        ("flowgate_evaluate", &[I32], &[I64], "a function `(i32) -> i64`"),
    ]
};

/// A policy ready to answer, with its instance pool and health.
pub(crate) struct CompiledPolicy {
    pub(crate) info: Arc<PolicyInfo>,
    /// Where the policy may apply; elsewhere the host does not call it.
    pub(crate) scope: Scope,
    pre: InstancePre<StoreState>,
    config: Vec<u8>,
    limits: Limits,
    /// Keeps the epoch ticker running for as long as this policy can be
    /// called: without it, deadlines would never fire.
    _runtime: Arc<Runtime>,
    /// Instances ready for the next call. Reusing an instance costs nothing;
    /// a fresh one costs an instantiation and a configuration parse.
    idle: Mutex<Vec<GuestInstance>>,
    health: Health,
}

/// Fault counters of one policy version.
#[derive(Default)]
struct Health {
    consecutive: AtomicU32,
    total: AtomicU64,
    quarantined: AtomicBool,
}

impl CompiledPolicy {
    /// Compiles and checks `bundle`, and starts one instance to prove it works.
    pub(crate) fn load(runtime: &Arc<Runtime>, bundle: &Bundle, limits: Limits) -> Result<CompiledPolicy, Error> {
        let origin = &bundle.origin;
        let module = runtime
            .compile(&bundle.wasm)
            .map_err(|source| Error::InvalidModule { origin: origin.clone(), source: source.into_boxed_dyn_error() })?;
        check_interface(origin, &module)?;
        let linker = Linker::new(&runtime.engine);
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|source| Error::InvalidModule { origin: origin.clone(), source: source.into_boxed_dyn_error() })?;

        let limits = limits.with(bundle.manifest.limits);
        let start = |source| Error::Start { origin: origin.clone(), source };
        let mut probe = GuestInstance::start(&pre, &limits).map_err(start)?;
        let version = probe.abi_version(&limits).map_err(start)?;
        if version != ABI_VERSION {
            return Err(Error::AbiVersion { origin: origin.clone(), found: version, expected: ABI_VERSION });
        }
        let rules_json = probe.rules(&limits).map_err(start)?;
        let reasons = parse_rules(origin, bundle, &rules_json)?;
        let config = bundle.manifest.config_json().into_bytes();
        probe.configure(&config, &limits).map_err(start)?.map_err(|message| Error::Config {
            origin: origin.clone(),
            policy: bundle.manifest.name.clone(),
            message,
        })?;

        let manifest = &bundle.manifest;
        let info = PolicyInfo {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: hex(&Sha256::digest(&bundle.wasm)),
            regulator: manifest.regulator.clone(),
            articles: manifest.articles.clone(),
            reasons,
        };
        Ok(CompiledPolicy {
            info: Arc::new(info),
            scope: Scope::new(&bundle.manifest.applies_to),
            pre,
            config,
            limits,
            _runtime: Arc::clone(runtime),
            idle: Mutex::new(vec![probe]),
            health: Health::default(),
        })
    }

    /// Answers a batch of `count` encoded records (see [`flowgate_sdk::wire`]).
    ///
    /// On a fault the instance is discarded and the fault counted; after
    /// `quarantine_after` faults in a row the policy answers only
    /// [`Fault::Quarantined`] until it is replaced.
    pub(crate) fn evaluate(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        quarantine_after: u32,
    ) -> Result<Vec<Answer>, Fault> {
        if self.health.quarantined.load(Ordering::Relaxed) {
            return Err(Fault::Quarantined(self.health.consecutive.load(Ordering::Relaxed)));
        }
        let result = self.call(records, selected);
        match &result {
            Ok(_) => self.health.consecutive.store(0, Ordering::Relaxed),
            Err(_) => {
                self.health.total.fetch_add(1, Ordering::Relaxed);
                let in_a_row = self.health.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
                if in_a_row >= quarantine_after {
                    self.health.quarantined.store(true, Ordering::Relaxed);
                }
            }
        }
        result
    }

    fn call(&self, records: &EncodedRecords, selected: &[usize]) -> Result<Vec<Answer>, Fault> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.fresh_instance()?,
        };
        let answers = instance.evaluate(records, selected, self.info.reasons.len(), &self.limits)?;
        // Only an instance that answered well goes back; a faulted one is dropped.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(instance);
        Ok(answers)
    }

    fn fresh_instance(&self) -> Result<GuestInstance, Fault> {
        let mut instance = GuestInstance::start(&self.pre, &self.limits)?;
        // The configuration was accepted at load; a refusal now is a fault.
        instance.configure(&self.config, &self.limits)?.map_err(Fault::BadAnswer)?;
        Ok(instance)
    }

    /// Faults since this version was loaded.
    pub(crate) fn faults(&self) -> u64 {
        self.health.total.load(Ordering::Relaxed)
    }

    /// Whether this version has been quarantined.
    pub(crate) fn is_quarantined(&self) -> bool {
        self.health.quarantined.load(Ordering::Relaxed)
    }

    /// The limits its calls run under.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }
}

fn check_interface(origin: &str, module: &Module) -> Result<(), Error> {
    if let Some(import) = module.imports().next() {
        return Err(Error::ForbiddenImport {
            origin: origin.to_owned(),
            module: import.module().to_owned(),
            name: import.name().to_owned(),
        });
    }
    let bad_export =
        |name, expected, found: String| Error::BadExport { origin: origin.to_owned(), name, expected, found };
    match module.get_export(Exports::MEMORY) {
        Some(ExternType::Memory(memory)) if !memory.is_64() && !memory.is_shared() => {}
        Some(other) => {
            return Err(bad_export(Exports::MEMORY, "a 32-bit unshared memory", describe(&other)));
        }
        None => {
            return Err(bad_export(Exports::MEMORY, "a 32-bit unshared memory", "nothing".into()));
        }
    }
    for (name, params, results, expected) in REQUIRED_FUNCS {
        match module.get_export(name) {
            Some(ExternType::Func(func))
                if same_types(func.params(), params) && same_types(func.results(), results) => {}
            Some(other) => return Err(bad_export(name, expected, describe(&other))),
            None => return Err(bad_export(name, expected, "nothing".into())),
        }
    }
    Ok(())
}

fn same_types(found: impl ExactSizeIterator<Item = wasmtime::ValType>, expected: &[wasmtime::ValType]) -> bool {
    found.len() == expected.len() && found.zip(expected).all(|(a, b)| wasmtime::ValType::eq(&a, b))
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => format!("a function `{func}`"),
        ExternType::Memory(memory) if memory.is_64() => "a 64-bit memory".into(),
        ExternType::Memory(_) => "a shared memory".into(),
        ExternType::Global(_) => "a global".into(),
        ExternType::Table(_) => "a table".into(),
        _ => "another kind of export".into(),
    }
}

fn parse_rules(origin: &str, bundle: &Bundle, json: &[u8]) -> Result<Vec<Reason>, Error> {
    let bad = |problem: String| Error::Rules { origin: origin.to_owned(), problem };
    let rules: Vec<RuleText> = serde_json::from_slice(json).map_err(|err| bad(err.to_string()))?;
    if rules.len() > RuleId::MAX_RULES {
        return Err(bad(format!("{} rules, at most {} allowed", rules.len(), RuleId::MAX_RULES)));
    }
    let manifest = &bundle.manifest;
    Ok(rules
        .iter()
        .map(|rule| Reason::new(&manifest.name, &manifest.version, &rule.name, &rule.article, &rule.message))
        .collect())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
