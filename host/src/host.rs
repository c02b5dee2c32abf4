//! The host: a set of loaded policies, asked about flows from many threads.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use flowgate_sdk::{Answer, Effect, FlowRecord};

use crate::archive::Archive;
use crate::bundle::Bundle;
use crate::combine::{Unmatched, combine};
use crate::compiled::{Isolation, PolicySettings};
use crate::decision::{Decision, PolicyAnswer, PolicyVerdict, Verdict};
use crate::decision_log::{DecisionLog, LogOptions};
use crate::digest::Digest;
use crate::encoded::EncodedRecords;
use crate::error::Error;
use crate::events::{PolicyEvent, error_chain};
use crate::fault::Fault;
use crate::keys::SecretKey;
use crate::load_limits::LoadLimits;
use crate::policy_info::PolicyInfo;
use crate::policy_set::PolicySet;
use crate::reason::Reason;
use crate::receipt::Unsealed;
use crate::sandbox::{DEFAULT_STACK_BYTES, Limits, Runtime};
use crate::scope::Facts;
use crate::trust::TrustPolicy;
use crate::vectors::{TrustCheck, admit};

/// Asks every loaded policy about each flow and combines their answers.
///
/// `Host` is `Send + Sync`: share it (in an `Arc`, or by reference in
/// scoped threads) and call [`Host::evaluate`] from as many threads as you
/// like. A policy that faults gives a `deny` naming it; nothing a policy
/// does makes `evaluate` panic or hang.
///
/// ```
/// # fn main() -> Result<(), flowgate::Error> {
/// # let bundles = flowgate_reference_set::bundles();
/// use flowgate::{Bundle, Host};
/// use flowgate_sdk::{Effect, FlowRecord};
///
/// let mut builder = Host::builder();
/// for (name, manifest, wasm) in bundles {
///     builder = builder.bundle(Bundle::from_bytes(name, manifest, wasm.to_vec())?);
/// }
/// let host = builder.build()?;
///
/// let flow = FlowRecord::from_json(br#"{"id":"f-1","platform":{"id":"meituan"},
///     "action":"use","data":{"categories":["contact"]},"purpose":"service",
///     "lawful_basis":"contract"}"#).unwrap();
/// let decision = host.evaluate(&flow);
/// assert_eq!(decision.effect, Effect::Allow);
/// # Ok(()) }
/// ```
pub struct Host {
    active: ArcSwap<PolicySet>,
    /// The trust policy bundles are verified against, if any.
    trust: ArcSwapOption<TrustPolicy>,
    /// Where the trust policy was read from, to follow while watching.
    pub(crate) trust_file: Option<PathBuf>,
    options: Options,
    settings: PolicySettings,
    runtime: Arc<Runtime>,
    subscribers: Mutex<Vec<Sender<PolicyEvent>>>,
    /// Where every decision's receipt is written before it is returned.
    log: Option<DecisionLog>,
    /// Where every bundle and set that decided is kept.
    archive: Option<Archive>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.active.load();
        let names: Vec<&str> = set.policies.iter().map(|p| p.info.name.as_str()).collect();
        f.debug_struct("Host")
            .field("policy_set", &set.id)
            .field("activation", &set.activation)
            .field("policies", &names)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Options {
    unmatched: Unmatched,
    max_batch: usize,
}

/// The state of one loaded policy, for monitoring.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    /// Name, version, digest and rules.
    pub info: Arc<PolicyInfo>,
    /// The limits its calls run under.
    pub limits: Limits,
    /// Faults since this version was loaded.
    pub faults: u64,
    /// Whether it faulted too often in a row and only answers `deny` now.
    pub quarantined: bool,
}

impl Host {
    /// Starts building a host.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Evaluates one flow.
    pub fn evaluate(&self, flow: &FlowRecord) -> Decision {
        let mut decisions = self.evaluate_batch(std::slice::from_ref(flow));
        decisions.pop().expect("one decision per flow")
    }

    /// Evaluates many flows, one decision per flow, in order.
    ///
    /// The whole batch is decided by one version of the policy set, and each
    /// policy is called once per [`HostBuilder::max_batch`] records instead of
    /// once per record.
    ///
    /// With a decision log, the decisions are returned only after their
    /// receipts are written; if they cannot be, every decision of the batch
    /// is a `deny` by rule `receipt-not-written` of policy `flowgate` (fail
    /// closed). [`Host::try_evaluate_batch`] returns that error instead.
    pub fn evaluate_batch(&self, flows: &[FlowRecord]) -> Vec<Decision> {
        self.try_evaluate_batch(flows).unwrap_or_else(|err| {
            let set = self.active.load();
            flows.iter().map(|flow| receipt_not_written(flow, &err, set.id, set.activation)).collect()
        })
    }

    /// Evaluates many flows like [`Host::evaluate_batch`], but fails if
    /// their receipts cannot be written to the decision log.
    pub fn try_evaluate_batch(&self, flows: &[FlowRecord]) -> Result<Vec<Decision>, Error> {
        let set = self.active.load_full();
        if let Some(archive) = &self.archive {
            archive.keep_set(&set)?;
        }
        let mut decisions = Vec::with_capacity(flows.len());
        let mut receipts = Vec::with_capacity(if self.log.is_some() { flows.len() } else { 0 });
        with_scratch(|scratch| {
            let Scratch { records, facts, selected, outcomes } = scratch;
            for chunk in flows.chunks(self.options.max_batch.max(1)) {
                records.encode(chunk);
                facts.clear();
                facts.extend(chunk.iter().map(Facts::of));
                // Only the policies that applied are recorded: a policy that
                // cannot apply costs its scope check and nothing more.
                let mut answers: Vec<Vec<PolicyAnswer>> = chunk.iter().map(|_| Vec::new()).collect();
                for &at in set.candidates(facts) {
                    let policy = &set.policies[at];
                    selected.clear();
                    for (i, facts) in facts.iter().enumerate() {
                        if policy.scope.covers(facts) {
                            selected.push(i);
                        }
                    }
                    outcomes.clear();
                    policy.answer_each(records, selected, outcomes);
                    for (&i, outcome) in selected.iter().zip(outcomes.drain(..)) {
                        if outcome.as_ref().is_ok_and(|answer| answer.effect() == Effect::NotApplicable) {
                            continue;
                        }
                        answers[i].push(PolicyAnswer { policy: Arc::clone(&policy.info), outcome });
                    }
                }
                for (i, (flow, answers)) in chunk.iter().zip(answers).enumerate() {
                    let mut decision = combine(flow, answers, self.options.unmatched);
                    decision.policy_set = set.id;
                    decision.activation = set.activation;
                    if self.log.is_some() {
                        receipts.push(self.receipt(flow, &decision, &Digest::of(records.record(i))));
                    }
                    decisions.push(decision);
                }
            }
        });
        if let Some(log) = &self.log {
            log.append(receipts)?;
        }
        Ok(decisions)
    }

    /// The decision log receipts are written to, if any: to see what
    /// opening it recovered, write a checkpoint, or close it.
    pub fn decision_log(&self) -> Option<&DecisionLog> {
        self.log.as_ref()
    }

    /// Evaluates one flow as [`Host::evaluate`] does, and says what every
    /// loaded policy did about it, in name order: skipped by its scope,
    /// answered (`not_applicable` included), or faulted. For people reading
    /// a decision (`flowgate check --explain`), not for the hot path: each
    /// policy is called on its own. With a decision log, the decision's
    /// receipt is written first, and an error returned if it cannot be.
    pub fn explain(&self, flow: &FlowRecord) -> Result<(Decision, Vec<PolicyVerdict>), Error> {
        let set = self.active.load_full();
        let records = EncodedRecords::new(std::slice::from_ref(flow));
        let facts = Facts::of(flow);
        let mut answers = Vec::new();
        let mut verdicts = Vec::with_capacity(set.policies.len());
        for policy in &set.policies {
            let verdict = if policy.scope.covers(&facts) {
                let outcome = policy.answer_one(&records, 0);
                if !outcome.as_ref().is_ok_and(|answer| answer.effect() == Effect::NotApplicable) {
                    answers.push(PolicyAnswer { policy: Arc::clone(&policy.info), outcome: outcome.clone() });
                }
                match outcome {
                    Ok(answer) => Verdict::Answered(answer),
                    Err(fault) => Verdict::Faulted(fault),
                }
            } else {
                Verdict::SkippedByScope
            };
            verdicts.push(PolicyVerdict { policy: Arc::clone(&policy.info), verdict });
        }
        let mut decision = combine(flow, answers, self.options.unmatched);
        decision.policy_set = set.id;
        decision.activation = set.activation;
        if let Some(log) = &self.log {
            log.append(vec![self.receipt(flow, &decision, &Digest::of(records.record(0)))])?;
        }
        Ok((decision, verdicts))
    }

    /// The receipt of `decision` about `flow`, whose binary form has `digest`.
    fn receipt(&self, flow: &FlowRecord, decision: &Decision, digest: &Digest) -> (Unsealed, Option<String>) {
        let keep_record = self.log.as_ref().is_some_and(|log| log.options().keep_records);
        (Unsealed::new(decision, &flow.platform.id, digest), keep_record.then(|| flow.to_json()))
    }

    /// Adds the policy of `bundle`, or replaces the loaded one of the same
    /// name, without interrupting evaluations.
    ///
    /// The new version is compiled, checked and run against its own test
    /// vectors first, off the evaluation path; only if all of that passes is
    /// the whole policy set swapped, at once. Evaluations already running
    /// finish on the set they started with. On any error the old version
    /// keeps serving.
    ///
    /// Subscribers ([`Host::subscribe`]) hear of the activation or the rejection.
    pub fn load(&self, bundle: &Bundle) -> Result<Arc<PolicyInfo>, Error> {
        let trust = self.trust.load_full();
        let serving = self.active.load().get(&bundle.manifest.name).map(|p| p.info.version.clone());
        let check = trust.as_deref().map(|policy| TrustCheck { policy, serving: serving.as_deref() });
        let admitted = admit(&self.runtime, bundle, &self.settings, check)
            .and_then(|policy| self.archive.as_ref().map_or(Ok(()), |a| a.keep_bundle(bundle)).map(|()| policy));
        let policy = match admitted {
            Ok(policy) => policy,
            Err(err) => {
                self.emit(PolicyEvent::Rejected { origin: bundle.origin.clone(), reason: error_chain(&err) });
                return Err(err);
            }
        };
        let mut policy_set = 0;
        self.active.rcu(|set| {
            let next = set.with(&policy);
            policy_set = next.activation;
            next
        });
        self.emit(PolicyEvent::Activated { policy: Arc::clone(&policy.info), policy_set });
        Ok(Arc::clone(&policy.info))
    }

    /// Removes the policy `name`; returns whether it was removed.
    ///
    /// A policy the trust policy requires is never removed: the last
    /// verified version keeps serving, and the attempt is reported.
    pub fn remove(&self, name: &str) -> bool {
        if self.trust.load().as_ref().is_some_and(|trust| trust.requires(name)) {
            self.emit(PolicyEvent::Rejected {
                origin: name.to_owned(),
                reason: format!("removing `{name}`: the trust file requires it"),
            });
            return false;
        }
        let mut policy_set = 0;
        let before = self.active.rcu(|set| {
            let next = set.without(name);
            policy_set = next.activation;
            next
        });
        let removed = before.get(name).is_some();
        if removed {
            self.emit(PolicyEvent::Removed { name: name.to_owned(), policy_set });
        }
        removed
    }

    /// Replaces the trust policy, and verifies every active policy against
    /// it at once: a policy that no longer meets it (its key revoked or
    /// expired, its grant changed) is deactivated, denying every flow in
    /// its scope, naming it, until a valid version is loaded.
    pub fn set_trust(&self, trust: TrustPolicy) {
        let digest = trust.digest();
        let mut deactivated = Vec::new();
        for policy in &self.active.load().policies {
            if policy.quarantine() == Some(crate::fault::Quarantine::Untrusted) {
                continue;
            }
            if let Err(source) = trust.verify(&policy.bundle, None) {
                policy.deactivate();
                deactivated.push((policy.info.name.clone(), source));
            }
        }
        self.trust.store(Some(Arc::new(trust)));
        self.active.rcu(|set| set.renewed());
        self.emit(PolicyEvent::TrustChanged { digest });
        for (name, source) in deactivated {
            self.emit(PolicyEvent::Deactivated { name, reason: source.to_string() });
        }
    }

    /// A channel that receives every [`PolicyEvent`] from now on.
    pub fn subscribe(&self) -> Receiver<PolicyEvent> {
        let (sender, receiver) = mpsc::channel();
        self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(sender);
        receiver
    }

    pub(crate) fn emit(&self, event: PolicyEvent) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        subscribers.retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    /// Whether the active set holds exactly this bundle, not deactivated.
    pub(crate) fn serves(&self, bundle: &Bundle) -> bool {
        let digest = bundle.digest();
        self.active.load().policies.iter().any(|p| p.info.bundle_digest == digest && p.quarantine().is_none())
    }

    /// The trust policy, if the host has one.
    pub fn trust(&self) -> Option<Arc<TrustPolicy>> {
        self.trust.load_full()
    }

    /// The caps bundles are read with.
    pub(crate) fn load_limits(&self) -> &LoadLimits {
        &self.settings.load
    }

    /// The loaded policies, in name order, with their fault counts.
    pub fn policies(&self) -> Vec<PolicyStatus> {
        self.active
            .load()
            .policies
            .iter()
            .map(|policy| PolicyStatus {
                info: Arc::clone(&policy.info),
                limits: policy.limits(),
                faults: policy.faults(),
                quarantined: policy.is_quarantined(),
            })
            .collect()
    }

    /// The activation counter of the active policy set: it grows with
    /// every change, within this process.
    pub fn policy_set_version(&self) -> u64 {
        self.active.load().activation
    }

    /// The content id of the active policy set: the same for the same
    /// policies on every machine and after every restart (see
    /// [`Decision::policy_set`]).
    pub fn policy_set(&self) -> crate::digest::Digest {
        self.active.load().id
    }
}

/// Configures and builds a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    bundles: Vec<Bundle>,
    dirs: Vec<PathBuf>,
    cache_dir: Option<PathBuf>,
    trust: Option<TrustPolicy>,
    trust_file: Option<PathBuf>,
    stack_bytes: usize,
    settings: PolicySettings,
    options: Options,
    log: Option<(PathBuf, SecretKey, LogOptions)>,
    archive: Option<PathBuf>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            bundles: Vec::new(),
            dirs: Vec::new(),
            cache_dir: None,
            trust: None,
            trust_file: None,
            stack_bytes: DEFAULT_STACK_BYTES,
            settings: PolicySettings::default(),
            options: Options { unmatched: Unmatched::Deny, max_batch: 256 },
            log: None,
            archive: None,
        }
    }
}

impl HostBuilder {
    /// Adds one policy bundle.
    pub fn bundle(mut self, bundle: Bundle) -> Self {
        self.bundles.push(bundle);
        self
    }

    /// Adds every bundle in the subdirectories of `dir` (read at [`HostBuilder::build`]).
    pub fn policy_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Writes a receipt of every decision to the decision log in `dir`
    /// (created if missing, recovered after a crash), its checkpoints
    /// signed with `key`. `docs/receipts.md` in the repository specifies
    /// the log; [`Audit`](crate::Audit) reads it back.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use flowgate::{Audit, Bundle, Host, LogOptions, SecretKey};
    /// use flowgate_sdk::FlowRecord;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let key = SecretKey::generate()?;
    /// let public = key.public();
    /// let mut builder = Host::builder().decision_log(dir.path(), key, LogOptions::default());
    /// for (name, manifest, wasm) in flowgate_reference_set::bundles() {
    ///     builder = builder.bundle(Bundle::from_bytes(name, manifest, wasm.to_vec())?);
    /// }
    /// let host = builder.build()?;
    /// let flow = FlowRecord::from_json(br#"{"id":"f-1","platform":{"id":"meituan"},
    ///     "action":"use","data":{"categories":["contact"]},"purpose":"service",
    ///     "lawful_basis":"contract"}"#)?;
    /// host.evaluate(&flow);
    /// drop(host); // closes the log with a signed checkpoint
    ///
    /// let verified = Audit::open(dir.path())?.verify(&public, &[])?;
    /// assert_eq!((verified.receipts, verified.broken), (1, None));
    /// # Ok(()) }
    /// ```
    pub fn decision_log(mut self, dir: impl Into<PathBuf>, key: SecretKey, options: LogOptions) -> Self {
        self.log = Some((dir.into(), key, options));
        self
    }

    /// Keeps every bundle the host activates, and every policy set it
    /// decides with, in the archive in `dir` (see [`Archive`]), so that
    /// replaying a decision log can find the exact set each receipt names.
    pub fn archive(mut self, dir: impl Into<PathBuf>) -> Self {
        self.archive = Some(dir.into());
        self
    }

    /// Verifies every bundle against `trust` before compiling it, and
    /// refuses to start without each policy it requires.
    pub fn trust(mut self, trust: TrustPolicy) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Reads the trust policy from `path` (see [`HostBuilder::trust`]);
    /// [`Host::watch`] then follows the file too, applying a change
    /// atomically or rejecting it (the old policy stays in force).
    pub fn trust_file(mut self, path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        self.trust = Some(TrustPolicy::from_file(&path)?);
        self.trust_file = Some(path);
        Ok(self)
    }

    /// Keeps compiled modules in `dir`, so a restart or a reload of an
    /// unchanged module does not compile again (see the crate docs).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Limits for every policy whose manifest sets none; a manifest's
    /// `[limits]` may ask for others, up to the [ceilings](HostBuilder::ceilings).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// The most any policy may have, whatever its manifest asks (default
    /// [`Limits::DEFAULT_CEILINGS`]). A manifest asking for more is refused
    /// at load; defaults above a ceiling are lowered to it.
    pub fn ceilings(mut self, ceilings: Limits) -> Self {
        self.settings.ceilings = ceilings;
        self
    }

    /// Caps on bundle files and module shape, checked before compiling
    /// (default [`LoadLimits::default`]).
    pub fn load_limits(mut self, limits: LoadLimits) -> Self {
        self.settings.load = limits;
        self
    }

    /// How much a policy can carry from one record to the next (default
    /// [`Isolation::Reuse`] with rechecks; see BENCHMARKS.md for what each level costs).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.settings.isolation = isolation;
        self
    }

    /// Where instances can carry state (batches at [`Isolation::PerCall`],
    /// everything at [`Isolation::Reuse`]), one record in `records` is
    /// answered again in a fresh instance; a different answer quarantines
    /// the policy as nondeterministic. Default 4096 (8 to 17 % of the cost
    /// of a batch of 256 at `Reuse`, see BENCHMARKS.md); 0 turns rechecks off.
    pub fn recheck_every(mut self, records: u64) -> Self {
        self.settings.recheck_every = records;
        self
    }

    /// Cap on the wasm stack of every call, in bytes (default 256 KiB).
    pub fn stack_bytes(mut self, bytes: usize) -> Self {
        self.stack_bytes = bytes;
        self
    }

    /// What personal flows that no policy applies to get (default: deny).
    pub fn unmatched(mut self, unmatched: Unmatched) -> Self {
        self.options.unmatched = unmatched;
        self
    }

    /// How many distinct faulting records quarantine a policy: it is
    /// quarantined once `faults` distinct records made it fault within the
    /// last `2 × faults` records it was asked about (default 16).
    pub fn quarantine_after(mut self, faults: u32) -> Self {
        self.settings.quarantine_after = faults.max(1);
        self
    }

    /// Most records handed to a policy in one call (default 256). The
    /// deadline applies to one call, so this also bounds the work per deadline.
    pub fn max_batch(mut self, records: usize) -> Self {
        self.options.max_batch = records.max(1);
        self
    }

    /// Compiles and checks every policy, then starts the host.
    pub fn build(self) -> Result<Host, Error> {
        let runtime = Arc::new(Runtime::new(self.stack_bytes, self.cache_dir.as_deref())?);
        let mut bundles = self.bundles;
        for dir in &self.dirs {
            bundles.extend(Bundle::all_in_dir(dir, &self.settings.load)?);
        }
        let check = || self.trust.as_ref().map(|policy| TrustCheck { policy, serving: None });
        let policies = bundles
            .iter()
            .map(|bundle| admit(&runtime, bundle, &self.settings, check()))
            .collect::<Result<Vec<_>, _>>()?;
        let archive = self.archive.map(Archive::open).transpose()?;
        if let Some(archive) = &archive {
            bundles.iter().try_for_each(|bundle| archive.keep_bundle(bundle))?;
        }
        let set = PolicySet::new(policies, self.options.unmatched)?;
        if let Some(missing) = self.trust.iter().flat_map(|t| t.required()).find(|name| set.get(name).is_none()) {
            return Err(Error::RequiredMissing(missing.clone()));
        }
        let log = self.log.map(|(dir, key, options)| DecisionLog::open(dir, key, options)).transpose()?;
        Ok(Host {
            log,
            archive,
            active: ArcSwap::from_pointee(set),
            trust: ArcSwapOption::new(self.trust.map(Arc::new)),
            trust_file: self.trust_file,
            options: self.options,
            settings: self.settings,
            runtime,
            subscribers: Mutex::new(Vec::new()),
        })
    }
}

/// What one evaluation needs besides its output, kept per thread so that a
/// call allocates little more than its decisions.
#[derive(Default)]
struct Scratch {
    records: EncodedRecords,
    facts: Vec<Facts>,
    selected: Vec<usize>,
    outcomes: Vec<Result<Answer, Fault>>,
}

/// Runs `f` with this thread's scratch.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::default();
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Entered again on this thread (an evaluation from inside one): a scratch of its own.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// The fail-closed decision when a receipt cannot be written.
fn receipt_not_written(flow: &FlowRecord, err: &Error, policy_set: Digest, activation: u64) -> Decision {
    let message = format!("the decision's receipt could not be written, so the flow is denied: {err}");
    Decision {
        id: flow.id.clone(),
        effect: Effect::Deny,
        obligations: Vec::new(),
        remedies: Vec::new(),
        reasons: vec![Reason::new(
            "flowgate",
            env!("CARGO_PKG_VERSION"),
            "receipt-not-written",
            "Flowgate fail-closed rule (docs/receipts.md)",
            &message,
        )],
        answers: Vec::new(),
        policy_set,
        activation,
    }
}
