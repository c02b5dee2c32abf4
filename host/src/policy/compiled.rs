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
use std::sync::Arc;

use wasmtime::{InstancePre, Linker, Module};

use flowgate_sdk::schema::Schema;
use flowgate_sdk::{ABI_VERSION, Answer};

use crate::bundle::{Bundle, check_shape};
use crate::model::{AnswerError, Digest, Fault, PolicyInfo, Quarantine, Scope, Signer, escape};
use crate::sandbox::{
    self, CompileError, Configured, EncodedRecords, GuestInstance, Limits, Runtime, Snapshottable, StoreState,
    Translation, host_word,
};

use super::PolicySettings;
use super::budget::Budget;
use super::error::LoadError;
use super::health::Health;
use super::interface::{MAX_CONFIG_MESSAGE, REQUIRED_FUNCS, check_exports, check_imports, config_refused, parse_rules};
use super::isolation::{Isolation, Tenant, ThreadSlots};
use super::recheck::Rechecks;

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
    /// Its configured instance as a module of its own, fresh instances
    /// start configured from it; without it, each is configured.
    configured: Option<Configured>,
    config: Vec<u8>,
    limits: Limits,
    isolation: Isolation,
    /// Which answers are checked again in a fresh instance.
    rechecks: Rechecks,
    /// Keeps the epoch ticker running for as long as this policy can be
    /// called: without it, deadlines would never fire.
    _runtime: Arc<Runtime>,
    /// Keeps its compiled module shared with the policies of the same bytes.
    _module: Arc<Module>,
    /// Instances kept for the next call at [`Isolation::Reuse`]: per
    /// thread slot, one per recent tenant.
    slots: ThreadSlots,
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
    ) -> Result<CompiledPolicy, LoadError> {
        let origin = &bundle.origin;
        let shape = |source| LoadError::Shape { origin: origin.clone(), source };
        let footprint = check_shape(&bundle.wasm, &settings.load).map_err(shape)?;
        let limits = settings
            .limits
            .with(bundle.manifest.limits, &settings.ceilings)
            .map_err(|source| LoadError::AboveCeiling { origin: origin.clone(), source })?;
        footprint.within(limits.memory_bytes).map_err(shape)?;
        let invalid = |source: wasmtime::Error| LoadError::InvalidModule {
            origin: origin.clone(),
            source: source.into_boxed_dyn_error(),
        };
        let uncompiled = |err| match err {
            CompileError::Invalid(source) => invalid(source),
            CompileError::TimedOut { cpu_seconds, set_by } => {
                LoadError::CompileTimedOut { origin: origin.clone(), cpu_seconds, set_by }
            }
            CompileError::Child(source) => LoadError::CompileChild { origin: origin.clone(), source },
        };
        // What the host runs and checks: the bundle's module, instrumented
        // so that a configured instance of it can be snapshotted (the same
        // code and imports; its mutable globals and memory exported to the
        // host). A module that cannot be is compiled as it came, and its
        // fresh instances are configured one by one.
        let snapshottable = settings.snapshots.then(|| Snapshottable::of(&bundle.wasm)).flatten();
        let (module, snapshottable) = match snapshottable.map(|s| (runtime.compile(s.wasm()), s)) {
            Some((Ok(module), snapshottable)) => (module, Some(snapshottable)),
            // Out of time is out of time, whatever the instrumentation.
            Some((Err(err @ (CompileError::TimedOut { .. } | CompileError::Child(_))), _)) => {
                return Err(uncompiled(err));
            }
            _ => (runtime.compile(&bundle.wasm).map_err(uncompiled)?, None),
        };
        check_imports(origin, &module)?;
        check_exports(origin, &module, &REQUIRED_FUNCS[..1])?;
        let linker = Linker::new(runtime.engine());
        let pre = linker.instantiate_pre(&module).map_err(invalid)?;

        let start = |source| LoadError::Start { origin: origin.clone(), source };
        let version = sandbox::abi_version(&pre, limits).map_err(start)?;
        if version != ABI_VERSION {
            return Err(LoadError::AbiVersion { origin: origin.clone(), found: version, expected: ABI_VERSION });
        }
        check_exports(origin, &module, &REQUIRED_FUNCS)?;
        let mut probe = GuestInstance::start(&pre, limits, limits.deadline_ms).map_err(start)?;
        let schema = Schema::parse(&probe.schema().map_err(start)?)
            .map_err(|err| LoadError::Schema { origin: origin.clone(), problem: err.0 })?;
        let rules_json = probe.rules().map_err(start)?;
        let reasons = parse_rules(origin, bundle, &rules_json)?;
        let config = bundle.manifest.config_json().into_bytes();
        probe
            .configure(&config, limits.deadline_ms)
            .map_err(start)?
            .map_err(|message| config_refused(bundle, &message))?;
        // Only once every check has passed: the configured state, frozen.
        let configured = snapshottable.and_then(|s| s.freeze(runtime, &pre, &config, limits));

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
        Ok(CompiledPolicy {
            info: Arc::new(info),
            bundle: bundle.without_module(),
            scope: Scope::new(&bundle.manifest.applies_to),
            translation: Translation::new(&schema),
            pre,
            configured,
            config,
            limits,
            isolation: settings.isolation,
            rechecks: Rechecks::new(settings.recheck_every),
            _runtime: Arc::clone(runtime),
            _module: module,
            slots: ThreadSlots::new(),
            health: Health::new(settings.quarantine_after),
        })
    }

    /// The policy's answer, or its fault, for each of the `selected`
    /// records of a batch, all of one `tenant`, appended to `out` in order
    /// (the caller keeps `out` from one call to the next, so the hot path
    /// allocates nothing).
    ///
    /// The batch is one call. If it faults, each record is asked again on
    /// its own, so one hostile record cannot deny its neighbours; after a
    /// deadline, those retries share one more deadline between them rather
    /// than taking a full one each, and a policy quarantined meanwhile is
    /// not asked again. Everything together stays within the call's
    /// [`Budget`]. A quarantined policy answers only [`Fault::Quarantined`]
    /// until it is replaced.
    pub(crate) fn answer_each(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        tenant: Tenant<'_>,
        out: &mut Vec<Result<Answer, Fault>>,
    ) {
        if let Some(cause) = self.health.quarantine() {
            out.extend(selected.iter().map(|_| Err(Fault::Quarantined(cause))));
            return;
        }
        if self.translation.is_identity() {
            return self.answer_known(records, selected, tenant, out);
        }
        // A record with a word the policy lacks is not sent: its answer is
        // the fault naming the word, and the others are asked as usual.
        let unknown: Vec<Option<Fault>> = selected
            .iter()
            .map(|&i| {
                self.translation
                    .unknown_word(records.record(i))
                    .map(|word| Fault::UnknownWord { field: word.vocabulary.field(), word: host_word(word) })
            })
            .collect();
        if unknown.iter().all(Option::is_none) {
            return self.answer_known(records, selected, tenant, out);
        }
        let known: Vec<usize> = selected.iter().zip(&unknown).filter(|(_, u)| u.is_none()).map(|(&i, _)| i).collect();
        let mut answers = Vec::with_capacity(known.len());
        self.answer_known(records, &known, tenant, &mut answers);
        let mut answers = answers.into_iter();
        out.extend(
            unknown.into_iter().map(|u| u.map_or_else(|| answers.next().expect("one answer per known record"), Err)),
        );
    }

    /// [`CompiledPolicy::answer_each`] for record `i` alone, as its platform's.
    pub(crate) fn answer_one(&self, records: &EncodedRecords, i: usize, platform: &str) -> Result<Answer, Fault> {
        let mut out = Vec::with_capacity(1);
        self.answer_each(records, &[i], Tenant { key: "", platform }, &mut out);
        out.pop().expect("one answer per record")
    }

    /// [`CompiledPolicy::answer_each`] for records whose words the policy knows.
    fn answer_known(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        tenant: Tenant<'_>,
        out: &mut Vec<Result<Answer, Fault>>,
    ) {
        if selected.is_empty() {
            return;
        }
        let budget = Budget::start(self.limits.deadline_ms);
        let start = out.len();
        match self.answer_batch(records, selected, tenant, self.limits.deadline_ms, &budget, out) {
            Ok(()) => self.health.answered(selected.len()),
            Err(fault) => self.retry_each(records, selected, tenant, fault, &budget, out),
        }
        self.recheck(records, selected, tenant, &budget, &mut out[start..]);
    }

    /// After `fault` stopped the batch: each record asked on its own, within
    /// what is left of the budget, while the policy is not quarantined.
    fn retry_each(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        tenant: Tenant<'_>,
        fault: Fault,
        budget: &Budget,
        out: &mut Vec<Result<Answer, Fault>>,
    ) {
        let retry_deadline = match fault {
            // A few ticks each: an honest record takes microseconds.
            Fault::Deadline(_) if selected.len() > 1 => {
                (self.limits.deadline_ms / selected.len() as u64).max(Limits::MIN_RETRY_MS)
            }
            _ => self.limits.deadline_ms,
        };
        for &i in selected {
            if let Some(cause) = self.health.quarantine() {
                out.push(Err(Fault::Quarantined(cause)));
                continue;
            }
            let answered = if selected.len() == 1 {
                Err(fault.clone())
            } else {
                self.answer_batch(records, &[i], tenant, retry_deadline, budget, out)
            };
            match answered {
                Ok(()) => self.health.answered(1),
                // Not asked: the records that spent the budget are counted.
                Err(spent @ Fault::BudgetSpent(_)) => out.push(Err(spent)),
                Err(fault) => {
                    self.health.faulted(record_hash(records.record(i)));
                    out.push(Err(fault));
                }
            }
        }
    }

    /// One call for the `selected` records, on an instance chosen by the
    /// isolation level (or one call per record at [`Isolation::PerRecord`]),
    /// each step within `deadline_ms` and what is left of `budget`; the
    /// answers appended to `out`. On a fault, `out` is left as it was.
    fn answer_batch(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        tenant: Tenant<'_>,
        deadline_ms: u64,
        budget: &Budget,
        out: &mut Vec<Result<Answer, Fault>>,
    ) -> Result<(), Fault> {
        let rule_count = self.info.reasons.len();
        let translation = &self.translation;
        let step = || match budget.for_work() {
            0 => Err(Fault::BudgetSpent(budget.total_ms())),
            left => Ok(left.min(deadline_ms)),
        };
        let start = out.len();
        let answered = match self.isolation {
            Isolation::PerRecord => selected.iter().try_for_each(|&i| {
                let mut instance = self.fresh_instance(&step)?;
                instance.answer_batch(records, &[i], translation, rule_count, step()?, out)
            }),
            Isolation::PerCall => self.fresh_instance(&step).and_then(|mut instance| {
                instance.answer_batch(records, selected, translation, rule_count, step()?, out)
            }),
            Isolation::Reuse => match self.slots.of_this_thread() {
                // The calling thread's own slot: no other thread waits on
                // it. Only this tenant's instance is ever taken from it.
                Some(mut kept) => {
                    let mut instance = match kept.take(tenant) {
                        Some(instance) => instance,
                        None => self.fresh_instance(&step)?,
                    };
                    let answered = instance.answer_batch(records, selected, translation, rule_count, step()?, out);
                    // A faulted instance is dropped, never reused.
                    if answered.is_ok() {
                        kept.put(tenant, instance);
                    }
                    answered
                }
                // Another thread holds the slot: a fresh instance, dropped after.
                None => self.fresh_instance(&step).and_then(|mut instance| {
                    instance.answer_batch(records, selected, translation, rule_count, step()?, out)
                }),
            },
        };
        if answered.is_err() {
            out.truncate(start);
        }
        answered
    }

    /// Where an instance may have carried state into `answers` (a batch at
    /// [`Isolation::PerCall`], everything at [`Isolation::Reuse`]), records
    /// picked at random (see `recheck`) are answered again together, in a
    /// random order, in an ordinary call on a fresh instance of the same
    /// tenant. A different answer, or a fault there, quarantines the policy
    /// as nondeterministic, and the whole call fails closed.
    fn recheck(
        &self,
        records: &EncodedRecords,
        selected: &[usize],
        tenant: Tenant<'_>,
        budget: &Budget,
        answers: &mut [Result<Answer, Fault>],
    ) {
        let carries_state = match self.isolation {
            Isolation::PerRecord => false,
            Isolation::PerCall => selected.len() > 1,
            Isolation::Reuse => true,
        };
        if !carries_state {
            return;
        }
        let mut picked = Vec::new();
        self.rechecks.pick(answers.len(), &mut picked);
        picked.retain(|&at| answers[at].is_ok());
        if picked.is_empty() {
            return;
        }
        let again: Vec<usize> = picked.iter().map(|&at| selected[at]).collect();
        let step = || match budget.for_recheck() {
            0 => Err(Fault::BudgetSpent(budget.total_ms())),
            left => Ok(left),
        };
        let mut fresh = Vec::with_capacity(again.len());
        let answered = self.fresh_instance(&step).and_then(|mut instance| {
            let rules = self.info.reasons.len();
            instance.answer_batch(records, &again, &self.translation, rules, step()?, &mut fresh)
        });
        let _ = tenant; // the fresh instance is this tenant's: it is used for nothing else
        let same = answered.is_ok() && picked.iter().zip(&fresh).all(|(&at, again)| *again == answers[at]);
        if !same {
            self.health.nondeterministic();
            let cause = self.health.quarantine().expect("just quarantined");
            answers.iter_mut().for_each(|answer| *answer = Err(Fault::Quarantined(cause)));
        }
    }

    /// A fresh, configured instance, each step within what `step` allows.
    fn fresh_instance(&self, step: &dyn Fn() -> Result<u64, Fault>) -> Result<GuestInstance, Fault> {
        if let Some(configured) = &self.configured {
            return configured.instance(self.limits, step()?);
        }
        let mut instance = GuestInstance::start(&self.pre, self.limits, step()?)?;
        // The configuration was accepted at load; a refusal now is a fault.
        instance
            .configure(&self.config, step()?)?
            .map_err(|message| Fault::BadAnswer(AnswerError::ConfigRefused(escape(&message, MAX_CONFIG_MESSAGE))))?;
        Ok(instance)
    }

    /// Starts a fresh, configured instance, as a call at
    /// [`Isolation::PerCall`] does, and drops it: what the benchmarks time.
    #[cfg(feature = "test-util")]
    pub(crate) fn start_fresh(&self) -> Result<(), Fault> {
        let budget = Budget::start(self.limits.deadline_ms);
        self.fresh_instance(&|| Ok(budget.for_work())).map(drop)
    }

    /// Whether its fresh instances start from a snapshot of its configured instance.
    #[cfg(feature = "test-util")]
    pub(crate) fn is_snapshotted(&self) -> bool {
        self.configured.is_some()
    }

    /// Its signatures no longer meet the trust policy: from now on it
    /// answers only a quarantine fault, denying every flow in its scope.
    pub(crate) fn deactivate(&self) {
        self.health.untrusted();
    }

    /// Why it is quarantined, if it is.
    pub(crate) fn quarantine(&self) -> Option<Quarantine> {
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

/// A content hash of one encoded record, to tell distinct records apart.
fn record_hash(record: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    record.hash(&mut hasher);
    hasher.finish()
}
