//! Building a host: its bundles or policy directories, trust, limits,
//! isolation, cache, decision log and archive, then compiling and checking
//! every policy before the first flow is decided.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::bundle::{Bundle, LoadLimits, SecretKey, TrustPolicy};
use crate::decide::{PolicySet, Unmatched};
use crate::error::Error;
use crate::log::{Archive, DecisionLog, LogOptions};
use crate::policy::{Isolation, PolicySettings, TrustCheck, admit};
use crate::sandbox::{CompileSandbox, DEFAULT_STACK_BYTES, Limits, Runtime};

use super::Host;

/// Configures and builds a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    bundles: Vec<Bundle>,
    dirs: Vec<PathBuf>,
    cache_dir: Option<PathBuf>,
    compile_sandbox: Option<CompileSandbox>,
    trust: Option<TrustPolicy>,
    trust_file: Option<PathBuf>,
    stack_bytes: usize,
    settings: PolicySettings,
    unmatched: Unmatched,
    max_batch: usize,
    log: Option<(PathBuf, SecretKey, LogOptions)>,
    archive: Option<PathBuf>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            bundles: Vec::new(),
            dirs: Vec::new(),
            cache_dir: None,
            compile_sandbox: None,
            trust: None,
            trust_file: None,
            stack_bytes: DEFAULT_STACK_BYTES,
            settings: PolicySettings::default(),
            unmatched: Unmatched::Deny,
            max_batch: 256,
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
    /// everything at [`Isolation::Reuse`]), each answered record is picked
    /// with probability `1 / records`, at random (a generator the guest
    /// cannot observe), and the picked records of a call are answered
    /// again, in a random order, in a fresh instance of the same tenant; a
    /// different answer, or a fault there, quarantines the policy as
    /// nondeterministic. Default 4096; 0 turns rechecks off.
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
        self.unmatched = unmatched;
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
        self.max_batch = records.max(1);
        self
    }

    /// Compiles every module (at start-up and on every reload) in a child
    /// process of `sandbox`, under its CPU-time limit: a module whose
    /// compile takes longer is refused
    /// ([`LoadError::CompileTimedOut`](crate::LoadError::CompileTimedOut)).
    /// Without it modules compile in this process, bounded only by the
    /// shape caps ([`HostBuilder::load_limits`]), which bound the size of
    /// a module but not every compile's time (docs/threat-model.md).
    pub fn compile_in_child(mut self, sandbox: CompileSandbox) -> Self {
        self.compile_sandbox = Some(sandbox);
        self
    }

    /// Whether fresh instances start from a snapshot of a configured
    /// instance (the default), or are configured one by one: a test hook,
    /// to check that both answer alike.
    #[cfg(feature = "test-util")]
    pub fn snapshots(mut self, on: bool) -> Self {
        self.settings.snapshots = on;
        self
    }

    /// Compiles and checks every policy, then starts the host.
    pub fn build(self) -> Result<Host, Error> {
        let runtime = Runtime::new(self.stack_bytes, self.settings.allocation(), self.cache_dir.as_deref())?;
        let runtime = Arc::new(runtime.compiling_in(self.compile_sandbox.clone()));
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
        let set = PolicySet::new(policies, self.unmatched)?;
        if let Some(missing) = self.trust.iter().flat_map(|t| t.required()).find(|name| set.get(name).is_none()) {
            return Err(Error::RequiredMissing(missing.clone()));
        }
        let log = self.log.map(|(dir, key, options)| DecisionLog::open(dir, key, options)).transpose()?;
        let host = Host {
            log,
            archive,
            active: ArcSwap::from_pointee(set),
            trust: ArcSwapOption::new(self.trust.map(Arc::new)),
            trust_file: self.trust_file,
            max_batch: self.max_batch,
            settings: self.settings,
            runtime,
            subscribers: Mutex::new(Vec::new()),
            served: Mutex::default(),
        };
        host.active.load().policies.iter().for_each(|policy| host.record_served(&policy.info));
        Ok(host)
    }
}
