//! A policy compiled and checked: its module, its identity, its limits,
//! its isolation level, its instances and its health.
//!
//! Loading refuses anything that is not a Flowgate policy: a module over
//! the load caps (checked before compiling), any import (the host offers
//! none), another ABI version (asked first, so an old module is told to
//! rebuild rather than which export it lacks), a missing or mistyped
//! export, a start function or probe that faults, an invalid schema or
//! rule table, limits above the host's ceilings, or a configuration the
//! policy rejects. Each refusal names the file and what was expected.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use wasmtime::{ExternType, InstancePre, Linker, Module};

use flowgate_sdk::schema::Schema;
use flowgate_sdk::{ABI_VERSION, Answer, RuleId};

use crate::bundle::Bundle;
use crate::digest::Digest;
use crate::encoded::EncodedRecords;
use crate::error::Error;
use crate::fault::{AnswerError, Fault};
use crate::health::Health;
use crate::instance::{self, Exports, GuestInstance};
use crate::load_limits::LoadLimits;
use crate::policy_info::{PolicyInfo, Signer};
use crate::reason::Reason;
use crate::sandbox::{Limits, Runtime, StoreState};
use crate::scope::Scope;
use crate::text;
use crate::translation::{self, Translation};

/// How much a policy can carry from one record to the next.
///
/// An instance's memory outlives a call, so a policy could remember what
/// it saw: answer differently depending on earlier records, or carry bytes
/// of one record into the answer about another. Each level trades that
/// against the cost of a fresh instance (instantiation and a configuration
/// parse, measured in BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// Every record is answered by a fresh instance: a policy sees one
    /// record and its configuration, nothing else. The strictest level.
    PerRecord,
    /// Every call (a batch of up to `max_batch` records, or one record) is
    /// answered by a fresh instance: a policy sees the records of that call
    /// only. Nothing crosses from one call, or one caller, to the next.
    PerCall,
    /// Instances are kept and reused across calls (the default): the
    /// fastest, and a policy could keep state between records, which
    /// rechecks catch ([`HostBuilder::recheck_every`](crate::HostBuilder::recheck_every)).
    /// A fresh instance costs an instantiation and a configuration parse,
    /// so `PerCall` doubles the cost of a batch of 256 and makes a
    /// single-record call some 70 times dearer (BENCHMARKS.md).
    #[default]
    Reuse,
}

/// What the platform decides for every policy it loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicySettings {
    /// Limits of a policy whose manifest sets none.
    pub(crate) limits: Limits,
    /// The most a manifest may ask for.
    pub(crate) ceilings: Limits,
    /// Caps on the bundle's module, before compiling.
    pub(crate) load: LoadLimits,
    /// Distinct faulting records that quarantine (see `health`).
    pub(crate) quarantine_after: u32,
    pub(crate) isolation: Isolation,
    /// One record in this many is answered again in a fresh instance; 0 never.
    pub(crate) recheck_every: u64,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            limits: Limits::default(),
            ceilings: Limits::DEFAULT_CEILINGS,
            load: LoadLimits::default(),
            quarantine_after: 16,
            isolation: Isolation::default(),
            recheck_every: 4096,
        }
    }
}

/// One rule as the module describes it (`flowgate_rules`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    name: String,
    article: String,
    message: String,
}

/// Caps on a rule's texts: what a legal reason needs, and no more, so a
/// policy cannot make every decision megabytes long.
const MAX_RULE_NAME: usize = 64;
const MAX_ARTICLE: usize = 128;
const MAX_MESSAGE: usize = 256;
/// Cap on a configuration error message as it reaches the log.
const MAX_CONFIG_MESSAGE: usize = 512;
/// Rule names the host gives its own reasons.
const RESERVED_RULES: [&str; 2] = ["policy-fault", "no-policy-applied"];

/// The exports the ABI requires, with their types as text for errors; the
/// version comes first, and is checked on its own first.
const REQUIRED_FUNCS: [(&str, &[wasmtime::ValType], &[wasmtime::ValType], &str); 6] = {
    use wasmtime::ValType::{I32, I64};
    [
        (Exports::ABI_VERSION, &[], &[I32], "a function `() -> i32`"),
        (Exports::SCHEMA, &[], &[I64], "a function `() -> i64`"),
        (Exports::BUFFER, &[I32], &[I32], "a function `(i32) -> i32`"),
        (Exports::RULES, &[], &[I64], "a function `() -> i64`"),
        (Exports::INIT, &[I32], &[I64], "a function `(i32) -> i64`"),
        (Exports::EVALUATE, &[I32], &[I64], "a function `(i32) -> i64`"),
    ]
};

/// A policy ready to answer, with its instances and health.
pub(crate) struct CompiledPolicy {
    pub(crate) info: Arc<PolicyInfo>,
    /// The bundle it came from, to verify again when the trust file changes.
    pub(crate) bundle: Bundle,
    /// Where the policy may apply; elsewhere the host does not call it.
    pub(crate) scope: Scope,
    /// The strings it reads and how its words map to the host's.
    translation: Translation,
    pre: InstancePre<StoreState>,
    config: Vec<u8>,
    limits: Limits,
    isolation: Isolation,
    recheck_every: u64,
    /// Records answered so far, to pick which ones are rechecked.
    answered: AtomicU64,
    /// Keeps the epoch ticker running for as long as this policy can be
    /// called: without it, deadlines would never fire.
    _runtime: Arc<Runtime>,
    /// Keeps its compiled module shared with the policies of the same bytes.
    _module: Arc<Module>,
    /// Instances kept for the next call at [`Isolation::Reuse`]: one per
    /// thread slot, and a shared pool for threads without a slot.
    slots: ThreadSlots,
    idle: Mutex<Vec<GuestInstance>>,
    health: Health,
}

impl CompiledPolicy {
    /// Checks `bundle`'s shape, compiles it, checks its interface, and
    /// starts one instance to prove it works.
    /// `signers` are the keys that admitted it, if a trust policy did.
    pub(crate) fn load(
        runtime: &Arc<Runtime>,
        bundle: &Bundle,
        settings: &PolicySettings,
        signers: Vec<Signer>,
    ) -> Result<CompiledPolicy, Error> {
        let origin = &bundle.origin;
        crate::shape::check(&bundle.wasm, &settings.load)
            .map_err(|source| Error::Shape { origin: origin.clone(), source })?;
        let limits = settings.limits.with(bundle.manifest.limits, &settings.ceilings, origin)?;
        let module = runtime
            .compile(&bundle.wasm)
            .map_err(|source| Error::InvalidModule { origin: origin.clone(), source: source.into_boxed_dyn_error() })?;
        check_imports(origin, &module)?;
        check_exports(origin, &module, &REQUIRED_FUNCS[..1])?;
        let linker = Linker::new(&runtime.engine);
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|source| Error::InvalidModule { origin: origin.clone(), source: source.into_boxed_dyn_error() })?;

        let start = |source| Error::Start { origin: origin.clone(), source };
        let version = instance::abi_version(&pre, limits).map_err(start)?;
        if version != ABI_VERSION {
            return Err(Error::AbiVersion { origin: origin.clone(), found: version, expected: ABI_VERSION });
        }
        check_exports(origin, &module, &REQUIRED_FUNCS)?;
        let mut probe = GuestInstance::start(&pre, limits).map_err(start)?;
        let schema = Schema::parse(&probe.schema().map_err(start)?)
            .map_err(|err| Error::Schema { origin: origin.clone(), problem: err.0 })?;
        let rules_json = probe.rules().map_err(start)?;
        let reasons = parse_rules(origin, bundle, &rules_json)?;
        let config = bundle.manifest.config_json().into_bytes();
        probe.configure(&config).map_err(start)?.map_err(|message| Error::Config {
            origin: origin.clone(),
            policy: bundle.manifest.name.clone(),
            message: text::escape(&message, MAX_CONFIG_MESSAGE),
        })?;

        let manifest = &bundle.manifest;
        let info = PolicyInfo {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: Digest::of(&bundle.wasm),
            bundle_digest: bundle.digest(),
            content_digest: bundle.content_digest(),
            signers,
            regulator: manifest.regulator.clone(),
            articles: manifest.articles.clone(),
            reasons,
        };
        let idle = if settings.isolation == Isolation::Reuse { vec![probe] } else { Vec::new() };
        Ok(CompiledPolicy {
            info: Arc::new(info),
            bundle: bundle.without_module(),
            scope: Scope::new(&bundle.manifest.applies_to),
            translation: Translation::new(&schema),
            pre,
            config,
            limits,
            isolation: settings.isolation,
            recheck_every: settings.recheck_every,
            answered: AtomicU64::new(0),
            _runtime: Arc::clone(runtime),
            _module: module,
            slots: ThreadSlots::new(),
            idle: Mutex::new(idle),
            health: Health::new(settings.quarantine_after),
        })
    }

    /// The policy's answer, or its fault, for each of the `selected`
    /// records of a batch, appended to `out` in order (the caller keeps
    /// `out` from one call to the next, so the hot path allocates nothing).
    ///
    /// The batch is one call. If it faults, each record is asked again on
    /// its own, so one hostile record cannot deny its neighbours; after a
    /// deadline, those retries share one more deadline between them rather
    /// than taking a full one each. A quarantined policy answers only
    /// [`Fault::Quarantined`] until it is replaced.
    pub(crate) fn answer_each(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        out: &mut Vec<Result<Answer, Fault>>,
    ) {
        if let Some(cause) = self.health.quarantine() {
            out.extend(selected.iter().map(|_| Err(Fault::Quarantined(cause))));
            return;
        }
        if self.translation.is_identity() {
            return self.answer_known(records, selected, out);
        }
        // A record with a word the policy lacks is not sent: its answer is
        // the fault naming the word, and the others are asked as usual.
        let unknown: Vec<Option<Fault>> = selected
            .iter()
            .map(|&i| {
                self.translation.unknown_word(records.record(i)).map(|word| Fault::UnknownWord {
                    field: word.vocabulary.field(),
                    word: translation::host_word(word),
                })
            })
            .collect();
        if unknown.iter().all(Option::is_none) {
            return self.answer_known(records, selected, out);
        }
        let known: Vec<usize> = selected.iter().zip(&unknown).filter(|(_, u)| u.is_none()).map(|(&i, _)| i).collect();
        let mut answers = Vec::with_capacity(known.len());
        self.answer_known(records, &known, &mut answers);
        let mut answers = answers.into_iter();
        out.extend(
            unknown.into_iter().map(|u| u.map_or_else(|| answers.next().expect("one answer per known record"), Err)),
        );
    }

    /// [`CompiledPolicy::answer_each`] for record `i` alone.
    pub(crate) fn answer_one(&self, records: &EncodedRecords, i: usize) -> Result<Answer, Fault> {
        let mut out = Vec::with_capacity(1);
        self.answer_each(records, &[i], &mut out);
        out.pop().expect("one answer per record")
    }

    /// [`CompiledPolicy::answer_each`] for records whose words the policy knows.
    fn answer_known(&self, records: &EncodedRecords, selected: &[usize], out: &mut Vec<Result<Answer, Fault>>) {
        if selected.is_empty() {
            return;
        }
        let start = out.len();
        let fault = match self.answer_batch(records, selected, self.limits.deadline_ms, out) {
            Ok(()) => {
                self.health.answered(selected.len());
                return self.recheck(records, selected, &mut out[start..]);
            }
            Err(fault) => fault,
        };
        let retry_deadline = match fault {
            // A few ticks each: an honest record takes microseconds.
            Fault::Deadline(_) if selected.len() > 1 => {
                (self.limits.deadline_ms / selected.len() as u64).max(Limits::MIN_RETRY_MS)
            }
            _ => self.limits.deadline_ms,
        };
        for &i in selected {
            let answered = if selected.len() == 1 {
                Err(fault.clone())
            } else {
                self.answer_batch(records, &[i], retry_deadline, out)
            };
            match answered {
                Ok(()) => self.health.answered(1),
                Err(fault) => {
                    self.health.faulted(record_hash(records.record(i)));
                    out.push(Err(fault));
                }
            }
        }
    }

    /// One call for the `selected` records, on an instance chosen by the
    /// isolation level (or one call per record at [`Isolation::PerRecord`]),
    /// its answers appended to `out`; on a fault, `out` is left as it was.
    fn answer_batch(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        deadline_ms: u64,
        out: &mut Vec<Result<Answer, Fault>>,
    ) -> Result<(), Fault> {
        let rule_count = self.info.reasons.len();
        let translation = &self.translation;
        let start = out.len();
        let answered = match self.isolation {
            Isolation::PerRecord => selected.iter().try_for_each(|&i| {
                self.fresh_instance()?.answer_batch(records, &[i], translation, rule_count, deadline_ms, out)
            }),
            Isolation::PerCall => self.fresh_instance().and_then(|mut instance| {
                instance.answer_batch(records, selected, translation, rule_count, deadline_ms, out)
            }),
            Isolation::Reuse => match self.slots.of_this_thread() {
                // The calling thread's own slot: no other thread waits on
                // it, and the instance is used where it is kept.
                Some(mut kept) => {
                    if kept.is_none() {
                        *kept = Some(self.spare_instance()?);
                    }
                    let instance = kept.as_mut().expect("just filled");
                    let answered = instance.answer_batch(records, selected, translation, rule_count, deadline_ms, out);
                    if answered.is_err() {
                        // A faulted instance is dropped, never reused.
                        *kept = None;
                    }
                    answered
                }
                // Another thread has the slot (more threads than slots): the shared pool.
                None => {
                    let mut instance = self.spare_instance()?;
                    instance.answer_batch(records, selected, translation, rule_count, deadline_ms, out)?;
                    self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(instance);
                    Ok(())
                }
            },
        };
        if answered.is_err() {
            out.truncate(start);
        }
        answered
    }

    /// Where an instance may have carried state into `answers`, answers one
    /// record in `recheck_every` again in a fresh instance. A difference
    /// quarantines the policy, and the whole call fails closed.
    fn recheck(&self, records: &EncodedRecords, selected: &[usize], answers: &mut [Result<Answer, Fault>]) {
        let carries_state = match self.isolation {
            Isolation::PerRecord => false,
            Isolation::PerCall => selected.len() > 1,
            Isolation::Reuse => true,
        };
        if !carries_state || self.recheck_every == 0 {
            return;
        }
        let before = self.answered.fetch_add(selected.len() as u64, Ordering::Relaxed);
        let due = self.recheck_every - before % self.recheck_every;
        if due > selected.len() as u64 {
            return;
        }
        let at = due as usize - 1;
        let mut fresh = Vec::with_capacity(1);
        let answered = self.fresh_instance().and_then(|mut instance| {
            let rules = self.info.reasons.len();
            instance.answer_batch(
                records,
                &selected[at..=at],
                &self.translation,
                rules,
                self.limits.deadline_ms,
                &mut fresh,
            )
        });
        if answered.is_ok() && fresh[0] != answers[at] {
            self.health.nondeterministic();
            let cause = self.health.quarantine().expect("just quarantined");
            answers.iter_mut().for_each(|answer| *answer = Err(Fault::Quarantined(cause)));
        }
    }

    /// An instance from the shared pool, or a fresh one.
    fn spare_instance(&self) -> Result<GuestInstance, Fault> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        idle.map_or_else(|| self.fresh_instance(), Ok)
    }

    fn fresh_instance(&self) -> Result<GuestInstance, Fault> {
        let mut instance = GuestInstance::start(&self.pre, self.limits)?;
        // The configuration was accepted at load; a refusal now is a fault.
        instance.configure(&self.config)?.map_err(|message| {
            Fault::BadAnswer(AnswerError::ConfigRefused(text::escape(&message, MAX_CONFIG_MESSAGE)))
        })?;
        Ok(instance)
    }

    /// Its signatures no longer meet the trust policy: from now on it
    /// answers only a quarantine fault, denying every flow in its scope.
    pub(crate) fn deactivate(&self) {
        self.health.untrusted();
    }

    /// Why it is quarantined, if it is.
    pub(crate) fn quarantine(&self) -> Option<crate::fault::Quarantine> {
        self.health.quarantine()
    }

    /// Faults since this version was loaded.
    pub(crate) fn faults(&self) -> u64 {
        self.health.total_faults()
    }

    /// Whether this version has been quarantined.
    pub(crate) fn is_quarantined(&self) -> bool {
        self.health.is_quarantined()
    }

    /// The limits its calls run under.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }
}

/// One instance slot per core, so that threads calling the same policy at
/// once do not queue on one lock: a thread takes the slot its index falls
/// on, and only when another thread holds that slot does it use the shared
/// pool. As many slots as cores, not threads: threads come and go (a pool
/// of a server's, `check`'s workers per chunk), and a slot per thread ever
/// seen would keep an instance of every policy for each.
struct ThreadSlots(Box<[Mutex<Option<GuestInstance>>]>);

impl ThreadSlots {
    fn new() -> ThreadSlots {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ThreadSlots((0..cores.clamp(1, 64)).map(|_| Mutex::new(None)).collect())
    }

    /// The calling thread's slot, unless another thread holds it.
    fn of_this_thread(&self) -> Option<std::sync::MutexGuard<'_, Option<GuestInstance>>> {
        static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        let slot = &self.0[THREAD.with(|n| *n) as usize % self.0.len()];
        match slot.try_lock() {
            Ok(kept) => Some(kept),
            // A panic while it was held cannot have left a half-used
            // instance behind: the instance is taken out during a call.
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// A content hash of one encoded record, to tell distinct records apart.
fn record_hash(record: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    record.hash(&mut hasher);
    hasher.finish()
}

/// Refuses any import (the host offers none) and a module exporting none of the ABI.
fn check_imports(origin: &str, module: &Module) -> Result<(), Error> {
    if let Some(import) = module.imports().next() {
        return Err(Error::ForbiddenImport {
            origin: origin.to_owned(),
            module: import.module().to_owned(),
            name: import.name().to_owned(),
        });
    }
    // A crate that never calls `export_policy!` (or builds with its
    // `library` feature) exports none of the ABI: say so, not which export is missing.
    if !REQUIRED_FUNCS.iter().any(|(name, ..)| module.get_export(name).is_some()) {
        return Err(Error::NoPolicyExported { origin: origin.to_owned() });
    }
    Ok(())
}

/// Checks the memory and the `funcs` exports, each of its type.
fn check_exports(
    origin: &str,
    module: &Module,
    funcs: &[(&'static str, &[wasmtime::ValType], &[wasmtime::ValType], &'static str)],
) -> Result<(), Error> {
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
    for &(name, params, results, expected) in funcs {
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
    let mut reasons: Vec<Reason> = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let valid_name = !rule.name.is_empty()
            && rule.name.len() <= MAX_RULE_NAME
            && rule.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(bad(format!(
                "rule {index} is named `{}`; a rule name is 1 to {MAX_RULE_NAME} lower-case letters, digits and hyphens",
                text::escape(&rule.name, MAX_RULE_NAME)
            )));
        }
        if RESERVED_RULES.contains(&rule.name.as_str()) {
            return Err(bad(format!("rule `{}` is a name the host gives its own reasons", rule.name)));
        }
        if reasons.iter().any(|reason| reason.rule() == rule.name) {
            return Err(bad(format!("rule `{}` appears twice", rule.name)));
        }
        for (part, value, cap) in [("article", &rule.article, MAX_ARTICLE), ("message", &rule.message, MAX_MESSAGE)] {
            if value.len() > cap || !text::is_printable(value) {
                return Err(bad(format!(
                    "the {part} of rule `{}` must be at most {cap} bytes of printable text",
                    rule.name
                )));
            }
        }
        let outcome = manifest.rules.get(&rule.name).copied();
        reasons.push(
            Reason::new(&manifest.name, &manifest.version, &rule.name, &rule.article, &rule.message)
                .with_outcome(outcome),
        );
    }
    if let Some(name) = manifest.rules.keys().find(|name| !reasons.iter().any(|reason| reason.rule() == *name)) {
        return Err(bad(format!(
            "the manifest's [rules] declares what `{}` does, but the rule table has no such rule",
            text::escape(name, MAX_RULE_NAME)
        )));
    }
    Ok(reasons)
}
