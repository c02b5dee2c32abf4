//! The options the commands that decide share (`check`, `serve`, and
//! `policies` and `audit replay` in part): where the policies come from (a
//! directory verified against a trust file, a directory run unverified when
//! asked to, or the reference set embedded in the binary), the platform's
//! ceilings and isolation, the decision log, and the module cache.

use std::io::Write;

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use flowgate::{Bundle, HostBuilder, Isolation, Limits, MANIFEST_FILE};

/// The embedded reference bundles.
pub fn reference_bundles() -> anyhow::Result<Vec<Bundle>> {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| {
            Bundle::from_bytes(&format!("<embedded>/{name}"), manifest, wasm.to_vec()).map_err(Into::into)
        })
        .collect()
}

/// The bundles `source` names, read for their vectors.
pub fn bundles(source: &PolicySource) -> anyhow::Result<Vec<Bundle>> {
    match &source.policies {
        Some(dir) => Ok(Bundle::all_in_dir(dir, &flowgate::LoadLimits::default())?),
        None => reference_bundles(),
    }
}

/// A host builder with the policies `source` names. A directory needs a
/// trust file, or `--allow-unsigned`, which is said on stderr: there is no
/// silent fallback to running unverified code. A directory that is itself
/// a bundle, or (unless `watching`, when bundles may arrive later) holds
/// none, is an error: it would load nothing, and deny every flow.
pub fn host_builder(source: &PolicySource, watching: bool, stderr: &mut impl Write) -> anyhow::Result<HostBuilder> {
    let builder = flowgate::Host::builder();
    let Some(dir) = &source.policies else {
        return Ok(reference_bundles()
            .context("loading the embedded reference set")?
            .into_iter()
            .fold(builder, HostBuilder::bundle));
    };
    anyhow::ensure!(dir.is_dir(), "`{}` is not a directory of policy bundles", dir.display());
    if dir.join(MANIFEST_FILE).exists() {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        anyhow::bail!(
            "`--policies {}` is a policy bundle itself, not a directory of bundles; pass the directory that holds it: `--policies {}`",
            dir.display(),
            parent.display()
        );
    }
    if !watching && !holds_a_bundle(dir)? {
        anyhow::bail!(
            "`--policies {}` holds no policy bundles (no subdirectory with a {MANIFEST_FILE}); with no policy loaded every flow of personal data would be denied `no-policy-applied`",
            dir.display()
        );
    }
    let builder = builder.policy_dir(dir);
    match (&source.trust, source.allow_unsigned) {
        (Some(trust), _) => Ok(builder.trust_file(trust).context("reading the trust file")?),
        (None, true) => {
            writeln!(
                stderr,
                "flowgate: the bundles in `{}` are not verified (--allow-unsigned)",
                flowgate::escape(&dir.display().to_string(), 4096)
            )?;
            Ok(builder)
        }
        (None, false) => anyhow::bail!(
            "`--policies {}` needs `--trust FILE` to verify its bundles, or `--allow-unsigned` to run them unverified",
            dir.display()
        ),
    }
}

/// Whether some subdirectory of `dir` holds a manifest.
fn holds_a_bundle(dir: &std::path::Path) -> anyhow::Result<bool> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read `{}`", dir.display()))?.path();
        if path.is_dir() && path.join(MANIFEST_FILE).exists() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where the policies come from, and how they are verified.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicySource {
    /// Directory of policy bundles; without it, the embedded reference set.
    #[arg(long, value_name = "DIR")]
    pub(crate) policies: Option<PathBuf>,
    /// The trust file bundles in DIR are verified against.
    #[arg(long, value_name = "FILE", requires = "policies")]
    pub(crate) trust: Option<PathBuf>,
    /// Run the bundles in DIR without verifying their signatures.
    #[arg(long, requires = "policies", conflicts_with = "trust")]
    pub(crate) allow_unsigned: bool,
}

/// The module cache of the deciding commands (`check`, `serve`).
#[derive(Debug, clap::Args)]
pub(crate) struct CacheArgs {
    /// Cache compiled modules in DIR, so the next start does not compile again.
    /// DIR must belong to you and be writable by no one else.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// What the platform decides for every policy it runs.
#[derive(Debug, clap::Args)]
pub(crate) struct HostOptions {
    /// The longest deadline any policy may have per call; a manifest asking for more is refused.
    #[arg(long, value_name = "MS", default_value_t = Limits::DEFAULT_CEILINGS.deadline_ms)]
    max_deadline_ms: u64,
    /// The most memory any policy may have; a manifest asking for more is refused.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_CEILINGS.memory_bytes)]
    max_memory_bytes: u64,
    /// How much a policy may carry from one record to the next.
    #[arg(long, value_enum, default_value = "reuse")]
    isolation: IsolationLevel,
    /// The CPU time compiling one policy module may take (in a child
    /// process); a module that takes longer is refused. At least 1.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = flowgate::CompileSandbox::DEFAULT_CPU_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_compile_seconds: u64,
}

/// The decision log: a receipt of every decision, written before it is printed.
#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {
    /// Write a receipt of every decision to the decision log in DIR
    /// (created if missing, recovered after a crash).
    #[arg(long, value_name = "DIR", requires = "log_key")]
    log: Option<PathBuf>,
    /// The key that signs the log's checkpoints (`ID.key`, from `flowgate key new`).
    #[arg(long, value_name = "ID.key", requires = "log")]
    log_key: Option<PathBuf>,
    /// Also keep each record beside its receipt (which holds only its
    /// digest), for `flowgate audit replay`. Off by default: the log should
    /// not become a second copy of personal data.
    #[arg(long, requires = "log")]
    log_records: bool,
    /// When a receipt counts as written: on disk (`fsync`), or handed to the
    /// operating system (`buffered`: survives a crash of flowgate, not of the machine).
    #[arg(long, value_enum, default_value = "fsync", requires = "log")]
    durability: DurabilityLevel,
    /// The log's name in its checkpoints (their origin line), such as
    /// `platform.example/decisions`; default: the name the log has, or for
    /// a new log one derived from its key (`flowgate.local/<16 hex digits>`).
    #[arg(long, value_name = "NAME", requires = "log")]
    log_origin: Option<String>,
    /// Keep every bundle activated, and every policy set that decided, in
    /// DIR, so `flowgate audit replay --archive DIR` can find them again.
    #[arg(long, value_name = "DIR")]
    archive: Option<PathBuf>,
}

/// Says on stderr, once the host has started, what the operator should
/// know: trust file entries that name no loaded policy (a typo in a
/// `[minimum]` name leaves that policy without its floor, a grant that
/// matches nothing grants nothing), and what opening the decision log recovered.
pub(crate) fn report_start(host: &flowgate::Host, stderr: &mut impl Write) -> std::io::Result<()> {
    if let Some(trust) = host.trust() {
        let loaded = host.policies();
        for entry in trust.unmatched(loaded.iter().map(|status| status.info.name.as_str())) {
            writeln!(stderr, "flowgate: warning: trust file: {}", flowgate::escape(&entry.to_string(), 512))?;
        }
    }
    report_recovery(host, stderr)
}

/// Says on stderr what opening the decision log recovered, if anything.
fn report_recovery(host: &flowgate::Host, stderr: &mut impl Write) -> std::io::Result<()> {
    let Some(log) = host.decision_log() else { return Ok(()) };
    let recovery = log.recovery();
    if recovery.created {
        writeln!(stderr, "flowgate: decision log: created, origin `{}`", flowgate::escape(&recovery.origin, 256))?;
    }
    if recovery.cut > 0 {
        writeln!(
            stderr,
            "flowgate: decision log: cut {} entries after its last checkpoint (a crash mid-write: never acknowledged, never signed)",
            recovery.cut
        )?;
    }
    if recovery.tree_rebuilt > 0 || recovery.index_rebuilt > 0 {
        writeln!(
            stderr,
            "flowgate: decision log: rebuilt {} tree hashes and {} index offsets from its entries (they lagged after a crash)",
            recovery.tree_rebuilt, recovery.index_rebuilt
        )?;
    }
    Ok(())
}

/// [`flowgate::Durability`], as the command line spells it.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityLevel {
    /// `fsync` every group of receipts before answering.
    Fsync,
    /// `write` every group before answering; `fsync` once a minute.
    Buffered,
}

impl LogArgs {
    pub(crate) fn apply(&self, mut builder: flowgate::HostBuilder) -> anyhow::Result<flowgate::HostBuilder> {
        if let Some(archive) = &self.archive {
            builder = builder.archive(archive);
        }
        let (Some(dir), Some(key)) = (&self.log, &self.log_key) else { return Ok(builder) };
        let key = flowgate::SecretKey::read(key)?;
        let options = flowgate::LogOptions {
            durability: match self.durability {
                DurabilityLevel::Fsync => flowgate::Durability::Fsync,
                DurabilityLevel::Buffered => flowgate::Durability::Buffered,
            },
            keep_records: self.log_records,
            origin: self.log_origin.clone(),
            ..flowgate::LogOptions::default()
        };
        Ok(builder.decision_log(dir, key, options))
    }
}

/// The isolation levels, as the command line spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum IsolationLevel {
    /// A fresh instance for every record.
    PerRecord,
    /// A fresh instance for every call (a batch of records).
    PerCall,
    /// Instances reused across calls, with sampled rechecks (the default).
    Reuse,
}

impl HostOptions {
    pub(crate) fn apply(&self, builder: flowgate::HostBuilder) -> flowgate::HostBuilder {
        let ceilings = Limits {
            deadline_ms: self.max_deadline_ms,
            memory_bytes: self.max_memory_bytes,
            ..Limits::DEFAULT_CEILINGS
        };
        let isolation = match self.isolation {
            IsolationLevel::PerRecord => Isolation::PerRecord,
            IsolationLevel::PerCall => Isolation::PerCall,
            IsolationLevel::Reuse => Isolation::Reuse,
        };
        builder.ceilings(ceilings).isolation(isolation)
    }
}

/// The host builder every deciding command (`check`, `serve`) starts from:
/// the policy source, then the host options and the decision log, then the
/// module cache. An option added here reaches both commands.
pub(crate) fn deciding_host(
    source: &PolicySource,
    watch: bool,
    host: &HostOptions,
    log: &LogArgs,
    cache: &CacheArgs,
    stderr: &mut impl Write,
) -> anyhow::Result<flowgate::HostBuilder> {
    let mut builder = log.apply(host.apply(host_builder(source, watch, stderr)?))?;
    if let Some(dir) = &cache.cache_dir {
        builder = builder.cache_dir(dir);
    }
    if let Some(sandbox) = crate::COMPILE_SANDBOX.get() {
        let sandbox = sandbox.clone().cpu_seconds(host.max_compile_seconds);
        builder = builder.compile_in_child(sandbox.limit_set_by("`--max-compile-seconds`"));
    }
    Ok(builder)
}
