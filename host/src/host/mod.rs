//! The host: the active policy set asked about flows from many threads,
//! how it is built, what it tells its subscribers, and the watcher that
//! keeps it in step with a directory of bundles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use flowgate_sdk::{Effect, FlowRecord};

use crate::bundle::{Bundle, LoadLimits, TrustPolicy};
use crate::decide::{PolicySet, evaluate};
use crate::error::Error;
use crate::log::{Archive, Batch, DecisionLog};
use crate::model::{Decision, Digest, PolicyInfo, PolicyVerdict, Quarantine, Reason};
use crate::policy::{PolicySettings, TrustCheck, admit};
use crate::sandbox::{Limits, Runtime};

mod builder;
mod events;
mod watch;

pub use builder::HostBuilder;
pub use events::PolicyEvent;
use events::error_chain;
pub use watch::Watcher;
#[cfg(feature = "test-util")]
pub use watch::{POLL_INTERVAL, QUIET};

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
    /// Most records handed to a policy in one call.
    max_batch: usize,
    settings: PolicySettings,
    runtime: Arc<Runtime>,
    subscribers: Mutex<Vec<Sender<PolicyEvent>>>,
    /// Where every decision's receipt is written before it is returned.
    log: Option<DecisionLog>,
    /// Where every bundle and set that decided is kept.
    archive: Option<Archive>,
    /// The highest version of each policy activated since start: with a
    /// trust policy, no version below it is loaded again, even after the
    /// policy was removed (so removing and re-adding cannot downgrade).
    served: Mutex<HashMap<String, semver::Version>>,
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

/// A policy set held for several calls ([`Host::pin`]).
#[derive(Clone)]
pub struct PinnedSet(Arc<PolicySet>);

impl std::fmt::Debug for PinnedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedSet").field("policy_set", &self.0.id).field("activation", &self.0.activation).finish()
    }
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
        self.try_evaluate_batch_in("", flows)
    }

    /// [`Host::evaluate_batch`] for the caller `tenant` (a client's token
    /// id in a shared service, say): its records never share instance
    /// state with those of another tenant, nor with those of another
    /// platform (`platform.id`), at any isolation level. Without a tenant
    /// (`""`), records are kept apart by platform only. The decisions are
    /// the same; only which instances answer differs.
    pub fn evaluate_batch_in(&self, tenant: &str, flows: &[FlowRecord]) -> Vec<Decision> {
        self.try_evaluate_batch_in(tenant, flows).unwrap_or_else(|err| {
            let set = self.active.load();
            flows.iter().map(|flow| receipt_not_written(flow, &err, set.id, set.activation)).collect()
        })
    }

    /// [`Host::try_evaluate_batch`] for the caller `tenant` (see [`Host::evaluate_batch_in`]).
    pub fn try_evaluate_batch_in(&self, tenant: &str, flows: &[FlowRecord]) -> Result<Vec<Decision>, Error> {
        let mut decisions = Vec::with_capacity(flows.len());
        self.decide(flows, false, tenant, |decision, _| decisions.push(decision))?;
        Ok(decisions)
    }

    /// The decision log receipts are written to, if any: to see what
    /// opening it recovered, write a checkpoint, or close it.
    pub fn decision_log(&self) -> Option<&DecisionLog> {
        self.log.as_ref()
    }

    /// Evaluates one flow as [`Host::evaluate`] does, and says what every
    /// loaded policy did about it, in name order: skipped by its scope,
    /// answered (`not_applicable` included), or faulted. With a decision
    /// log, the decision's receipt is written first, and an error returned
    /// if it cannot be.
    pub fn explain(&self, flow: &FlowRecord) -> Result<(Decision, Vec<PolicyVerdict>), Error> {
        let mut explained = self.explain_batch(std::slice::from_ref(flow))?;
        Ok(explained.pop().expect("one decision per flow"))
    }

    /// [`Host::explain`] for many flows, decided together as
    /// [`Host::evaluate_batch`] decides them: the same loop, the same
    /// decisions, with each policy's verdict beside each decision.
    pub fn explain_batch(&self, flows: &[FlowRecord]) -> Result<Vec<(Decision, Vec<PolicyVerdict>)>, Error> {
        let mut explained = Vec::with_capacity(flows.len());
        self.decide(flows, true, "", |decision, verdicts| explained.push((decision, verdicts)))?;
        Ok(explained)
    }

    /// Decides `flows` of `tenant` with the active set, handing each
    /// decision (and, when `explain` is set, every policy's verdict) to
    /// `keep` in order, once every receipt is written.
    fn decide(
        &self,
        flows: &[FlowRecord],
        explain: bool,
        tenant: &str,
        keep: impl FnMut(Decision, Vec<PolicyVerdict>),
    ) -> Result<(), Error> {
        self.decide_pinned(&self.pin(), flows, explain, tenant, keep)
    }

    /// The active policy set, held: every call of [`Host::decide_pinned`]
    /// given it decides with this version, whatever is activated meanwhile,
    /// so a stream of records decided in parts is decided by one version. A
    /// policy deactivated meanwhile (its key revoked) still denies at once.
    pub fn pin(&self) -> PinnedSet {
        PinnedSet(self.active.load_full())
    }

    /// Decides `flows` as [`Host::try_evaluate_batch_in`] does for `tenant`
    /// (`""` for none; or, with `explain`, as [`Host::explain_batch`] does),
    /// with the `pinned` set,
    /// handing each decision and (with `explain`) every policy's verdict
    /// to `keep` in order, once every receipt is written.
    pub fn decide_pinned(
        &self,
        pinned: &PinnedSet,
        flows: &[FlowRecord],
        explain: bool,
        tenant: &str,
        mut keep: impl FnMut(Decision, Vec<PolicyVerdict>),
    ) -> Result<(), Error> {
        let set = &pinned.0;
        if let Some(archive) = &self.archive {
            archive.keep_set(set)?;
        }
        let Some(log) = &self.log else {
            evaluate(set, flows, self.max_batch, explain, tenant, |_, decision, verdicts, _| keep(decision, verdicts));
            return Ok(());
        };
        // With a log, nothing is handed over before its receipt is written.
        let keep_records = log.options().keep_records;
        let numbering = log.numbering(set)?;
        let mut batch = Batch::with_capacity(flows.len());
        let mut decided = Vec::with_capacity(flows.len());
        let mut unloggable = None;
        evaluate(set, flows, self.max_batch, explain, tenant, |flow, decision, verdicts, record| {
            let kept = keep_records.then(|| flow.to_json());
            if let Err(problem) = numbering.push(&mut batch, &decision, &flow.platform.id, Digest::of(record), kept) {
                unloggable = unloggable.take().or(Some(problem));
            }
            decided.push((decision, verdicts));
        });
        if let Some(problem) = unloggable {
            return Err(log.unloggable(problem).into());
        }
        log.append(&numbering, batch)?;
        decided.into_iter().for_each(|(decision, verdicts)| keep(decision, verdicts));
        Ok(())
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
        let floor = self.floor(&bundle.manifest.name);
        let check = trust.as_deref().map(|policy| TrustCheck { policy, serving: floor.as_deref() });
        let admitted = admit(&self.runtime, bundle, &self.settings, check).map_err(Error::from).and_then(|policy| {
            self.archive.as_ref().map_or(Ok(()), |a| a.keep_bundle(bundle)).map(|()| policy).map_err(Error::from)
        });
        let policy = match admitted {
            Ok(policy) => policy,
            Err(err) => {
                let policy = Some(format!("{} {}", bundle.manifest.name, bundle.manifest.version));
                self.emit(PolicyEvent::Rejected {
                    origin: bundle.source().to_owned(),
                    policy,
                    reason: error_chain(&err),
                });
                return Err(err);
            }
        };
        let mut policy_set = 0;
        self.active.rcu(|set| {
            let next = set.with(&policy);
            policy_set = next.activation;
            next
        });
        self.record_served(&policy.info);
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
                policy: None,
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

    /// The version no new version of `name` may go below: the highest
    /// activated since start, or the one serving.
    fn floor(&self, name: &str) -> Option<String> {
        let serving = self.active.load().get(name).and_then(|p| semver::Version::parse(&p.info.version).ok());
        let served = lock(&self.served).get(name).cloned();
        serving.into_iter().chain(served).max().map(|version| version.to_string())
    }

    /// Remembers `info`'s version if it is the highest of its name so far.
    pub(crate) fn record_served(&self, info: &PolicyInfo) {
        let Ok(version) = semver::Version::parse(&info.version) else { return };
        let mut served = lock(&self.served);
        if served.get(&info.name).is_none_or(|highest| *highest < version) {
            served.insert(info.name.clone(), version);
        }
    }

    /// Replaces the trust policy, and verifies every active policy against
    /// it at once: a policy that no longer meets it (its key revoked or
    /// expired, its grant changed) is deactivated, denying every flow in
    /// its scope, naming it, until a valid version is loaded.
    pub fn set_trust(&self, trust: TrustPolicy) {
        let digest = trust.digest();
        // In force first, so no version is admitted under the old trust
        // from now on; then what serves is judged by it.
        let trust = Arc::new(trust);
        self.trust.store(Some(Arc::clone(&trust)));
        let mut deactivated = Vec::new();
        for policy in &self.active.load().policies {
            if policy.quarantine() == Some(Quarantine::Untrusted) {
                continue;
            }
            if let Err(source) = trust.verify(&policy.bundle, None) {
                policy.deactivate();
                deactivated.push((policy.info.name.clone(), source));
            }
        }
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

    /// Starts, and drops, one fresh configured instance of every active
    /// policy: the cost the isolation benchmarks measure. Returns how many.
    #[cfg(feature = "test-util")]
    pub(crate) fn start_fresh_instances(&self) -> Result<usize, crate::model::Fault> {
        let set = self.active.load();
        set.policies.iter().try_for_each(|policy| policy.start_fresh())?;
        Ok(set.policies.len())
    }

    /// How many active policies start fresh instances from a snapshot.
    #[cfg(feature = "test-util")]
    pub(crate) fn snapshotted(&self) -> usize {
        self.active.load().policies.iter().filter(|policy| policy.is_snapshotted()).count()
    }

    /// The activation counter of the active policy set: it grows with
    /// every change, within this process.
    pub fn policy_set_version(&self) -> u64 {
        self.active.load().activation
    }

    /// The content id of the active policy set: the same for the same
    /// policies on every machine and after every restart (see
    /// [`Decision::policy_set`]).
    pub fn policy_set(&self) -> Digest {
        self.active.load().id
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The fail-closed decision when a receipt cannot be written.
fn receipt_not_written(flow: &FlowRecord, err: &Error, policy_set: Digest, activation: u64) -> Decision {
    let message = format!("the decision's receipt could not be written, so the flow is denied: {}", error_chain(err));
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
