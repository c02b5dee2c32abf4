//! The `flowgate` command, as a library so tests can run it in-process.
//!
//! - `flowgate check [--policies DIR --trust FILE] FILE`: one decision per JSON line;
//! - `flowgate new NAME`: a standalone policy crate to start from;
//! - `flowgate build [--out DIR] CRATE...`: policy crates to tested bundles;
//! - `flowgate test [-v] [BUNDLE...]`: a bundle's own test vectors against its Wasm;
//! - `flowgate key new ID`, `flowgate sign --key ID.key BUNDLE...`: a
//!   regulator's key pair, and signatures of bundles;
//! - `flowgate verify [--strict] --trust FILE BUNDLE...`: each bundle's signers and verdict;
//! - `flowgate policies [--policies DIR --trust FILE]`: the policy set and its policies;
//! - `flowgate audit verify|checkpoint|prove|consistency|stats|replay LOG`: a decision
//!   log read back and proved from; `flowgate audit check PROOF`: a proof checked
//!   offline; `flowgate audit witness`: a checkpoint cosigned by a regulator;
//! - `flowgate digest RECORD.json`: the digest a receipt gives a record.
//! - `flowgate serve [--policies DIR --trust FILE] --listen ADDR`: the host as an
//!   HTTP service (see [`serve`]).
//!
//! Exit status: 0 success, 1 some input lines invalid (or vectors failing),
//! 2 usage, input or policy loading error.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod commands;
mod lines;
mod options;

pub use commands::serve;
use commands::{audit, build, check, digest, new, policies, reference, signing, test, verify};
use options::{CacheArgs, HostOptions, LogArgs, PolicySource, deciding_host};

/// The argument that makes the `flowgate` binary a compile child
/// ([`flowgate::compile_child`]) instead of the command line.
pub const COMPILE_CHILD: &str = "compile-child";

static COMPILE_SANDBOX: std::sync::OnceLock<flowgate::CompileSandbox> = std::sync::OnceLock::new();

/// Makes `check` and `serve` compile policies in child processes of
/// `sandbox`, under its CPU-time limit. The `flowgate` binary does, naming
/// itself; run in-process (tests, embedders), modules compile in-process
/// unless this is called.
pub fn compile_in_child(sandbox: flowgate::CompileSandbox) {
    let _ = COMPILE_SANDBOX.set(sandbox);
}

/// Exit status: everything worked.
pub const EXIT_OK: u8 = 0;
/// Exit status: some lines were invalid, or some test vectors failed.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: usage, input or policy loading error.
pub const EXIT_ERROR: u8 = 2;

/// Checks proposed data flows against data-handling policies.
#[derive(Debug, Parser)]
#[command(name = "flowgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide every flow of a JSON Lines file, one decision per line on stdout.
    Check {
        #[command(flatten)]
        source: PolicySource,
        /// Never draw a progress bar, even on a terminal.
        #[arg(long)]
        no_progress: bool,
        /// Keep reading and answering while the policies in DIR (and the
        /// trust file) change: new versions are loaded after they pass their checks.
        #[arg(long, requires = "policies")]
        watch: bool,
        /// Add to every decision the policy set's content id and each
        /// applied policy's version and digest.
        #[arg(long)]
        provenance: bool,
        /// Add to every decision what each loaded policy did: skipped by its
        /// `[applies_to]`, answered (with its own effect, obligations,
        /// remedies and rules), or faulted.
        #[arg(long)]
        explain: bool,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        host: HostOptions,
        #[command(flatten)]
        log: LogArgs,
        /// JSON Lines file of flow records, or `-` for stdin.
        file: PathBuf,
    },
    /// Create a policy crate to start from: Cargo.toml (the SDK by path),
    /// src/lib.rs with one rule, manifest.toml with two vectors.
    New {
        /// The policy's name: lower-case letters, digits and hyphens (`minors-data`).
        name: String,
        /// Where to create the crate's directory.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// The SDK to depend on (the `sdk/` directory of a Flowgate checkout);
        /// default: the one this `flowgate` was built from.
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build policy crates into bundles (manifest + Wasm), after their test vectors pass.
    Build {
        /// Where to write the bundles, one subdirectory each.
        #[arg(long, short, default_value = "bundles")]
        out: PathBuf,
        /// Cargo's target directory for the Wasm build (default: the crate's own).
        #[arg(long, value_name = "DIR")]
        target_dir: Option<PathBuf>,
        /// Policy crate directories (each with Cargo.toml and manifest.toml);
        /// directories without a manifest are skipped with a note.
        #[arg(required = true)]
        crates: Vec<PathBuf>,
    },
    /// Write the reference bundles embedded in this binary (unsigned) to
    /// DIR, one directory each, to load beside your own with `--policies DIR`.
    Reference {
        /// Where to write them.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run bundles' own test vectors against their Wasm builds.
    Test {
        /// List every vector, passing or not.
        #[arg(short, long)]
        verbose: bool,
        /// Bundle directories; without any, the embedded reference set.
        bundles: Vec<PathBuf>,
    },
    /// Manage regulators' signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Add a signature to each bundle directory (`signatures.toml`).
    Sign {
        /// The secret key (`ID.key`, from `flowgate key new`).
        #[arg(long, value_name = "ID.key")]
        key: PathBuf,
        /// Bundle directories.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Verify bundles against a trust file: each one's signers and verdict.
    Verify {
        /// The trust file.
        #[arg(long, value_name = "FILE")]
        trust: PathBuf,
        /// Also refuse trust file entries that name none of the bundles: a
        /// `[minimum]` or `required` name, or a grant's pattern (a typo, or a
        /// bundle left out).
        #[arg(long)]
        strict: bool,
        /// Bundle directories.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Serve decisions over HTTP (JSON and JSON Lines), following the policy directory.
    Serve {
        #[command(flatten)]
        source: PolicySource,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        host: HostOptions,
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        serve: serve::ServeOptions,
        /// Accepted for symmetry with `check --watch`: `serve` always
        /// follows its policies directory and trust file.
        #[arg(long, hide = true)]
        watch: bool,
    },
    /// List the policy set: its content id, and each policy's version,
    /// digest, signers and limits.
    Policies {
        /// Also show overlapping rules: on the policies' own vectors, rules of
        /// different policies that give the same obligation or remedy together.
        #[arg(long)]
        overlaps: bool,
        #[command(flatten)]
        source: PolicySource,
        #[command(flatten)]
        host: HostOptions,
    },
    /// Read a decision log back: verify it, collect a checkpoint, prove a
    /// decision, check a proof, witness, count, replay.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the digest a receipt gives a record (SHA-256 of its binary
    /// encoding): one line per record of a JSON file or JSON Lines file.
    Digest {
        /// The record(s), or `-` for stdin.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every entry, the tree, every checkpoint (and those collected),
    /// kept records and cosignatures; exit 1 naming what is broken.
    Verify {
        /// The log's directory.
        log: PathBuf,
        /// The log key's public half (`ID.pub`, or a verifier key).
        #[arg(long, value_name = "LOG.pub")]
        key: PathBuf,
        /// Checkpoints collected earlier (`audit checkpoint`, `audit
        /// witness`): the log must still hold every tree they signed.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        checkpoints: Vec<PathBuf>,
        /// A witness whose cosignature a collected checkpoint must carry.
        #[arg(long, value_name = "W.pub")]
        witness: Vec<PathBuf>,
    },
    /// Print the newest checkpoint, once checked (signed by the key, held
    /// by the log's tree), for a regulator to keep.
    Checkpoint {
        /// The log's directory.
        log: PathBuf,
        /// The log key's public half.
        #[arg(long, value_name = "LOG.pub")]
        key: PathBuf,
    },
    /// Print the inclusion proof of one entry (or of a flow's receipts), as
    /// JSON: receipt, index, tree_size, proof, checkpoint.
    Prove {
        /// The log's directory.
        log: PathBuf,
        /// The entry's index (a receipt's sequence number).
        #[arg(long, value_name = "N", required_unless_present = "flow", conflicts_with = "flow")]
        seq: Option<u64>,
        /// The flow's id: every receipt of it (found by reading every entry).
        #[arg(long, value_name = "ID")]
        flow: Option<String>,
        /// With `--flow`: only the receipts of this platform.
        #[arg(long, value_name = "ID", requires = "flow")]
        platform: Option<String>,
        /// Prove against this checkpoint (a witnessed one, say) instead of
        /// the log's newest.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Check the checkpoint's signature with this key before printing.
        #[arg(long, value_name = "LOG.pub")]
        key: Option<PathBuf>,
    },
    /// Check a proof (`audit prove` or `audit consistency` output) offline,
    /// with the log's public key; exit 1 if it does not prove what it says.
    Check {
        /// The proof document.
        proof: PathBuf,
        /// The log key's public half.
        #[arg(long, value_name = "LOG.pub")]
        key: PathBuf,
        /// A witness whose cosignature the checkpoint must carry.
        #[arg(long, value_name = "W.pub")]
        witness: Vec<PathBuf>,
        /// For a consistency proof: the older checkpoint it starts from.
        #[arg(long, value_name = "OLD")]
        from: Option<PathBuf>,
        /// For an inclusion proof: a record that must be the one the receipt decided.
        #[arg(long, value_name = "RECORD.json")]
        record: Option<PathBuf>,
    },
    /// Print the proof that the log's newest checkpoint extends an older
    /// one, as JSON: old_size, new_size, proof, checkpoint.
    Consistency {
        /// The log's directory.
        log: PathBuf,
        /// The older checkpoint (default: the empty tree).
        #[arg(long, value_name = "OLD")]
        from: Option<PathBuf>,
        /// Prove to this checkpoint instead of the log's newest.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Check the checkpoints' signatures with this key first.
        #[arg(long, value_name = "LOG.pub")]
        key: Option<PathBuf>,
    },
    /// Cosign a checkpoint as a witness, if it is consistent with the last
    /// one cosigned for its log; print it with the cosignature added.
    Witness {
        /// The witness's secret key (`audit witness-key`).
        #[arg(long, value_name = "W.key")]
        key: PathBuf,
        /// The log key's public half.
        #[arg(long, value_name = "LOG.pub")]
        log_key: PathBuf,
        /// Where the witness keeps the last checkpoint it cosigned per log.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The consistency proof (`audit consistency --from` the last one cosigned).
        proof: PathBuf,
    },
    /// Write a witness key pair: `ID.key` (secret, mode 0600) and `ID.pub`
    /// (its verifier key, for `--witness`).
    WitnessKey {
        /// The files' name.
        id: String,
        /// The witness's name in cosignatures (`regulator.example/witness`).
        #[arg(long)]
        name: String,
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Count decisions per effect, policy, rule, platform and day.
    Stats {
        /// The log's directory.
        log: PathBuf,
    },
    /// Decide every kept record (`--log-records`) again, with the policies
    /// given (the embedded reference set by default) or with the exact set
    /// each receipt names (`--archive`), and report what changed; exit 1 if
    /// any decision differs, or there is nothing to replay.
    Replay {
        /// The log's directory.
        log: PathBuf,
        /// The archive the deciding host kept (`check --archive`): replay
        /// each record with the policy set its receipt names.
        #[arg(long, value_name = "DIR", conflicts_with = "policies")]
        archive: Option<PathBuf>,
        #[command(flatten)]
        source: PolicySource,
        #[command(flatten)]
        host: HostOptions,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Write a new Ed25519 key pair: `ID.key` (secret, mode 0600) and `ID.pub`.
    New {
        /// The key's id, as a trust file will name it (`pboc-2026`).
        id: String,
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// The host `flowgate check OPTIONS FILE` would decide with, for programs
/// that embed the host and must load, verify and refuse exactly as the CLI
/// does (the Python package): `options` are `check`'s options, without
/// `check` and FILE (`["--policies", "bundles", "--trust", "trust.toml"]`).
/// Notes the CLI writes on stderr (`--allow-unsigned`, a recovered log) go
/// to `stderr`. An error is the message the CLI prints after `error: `, or
/// the first line of its usage error.
///
/// ```
/// let mut notes = Vec::new();
/// let host = flowgate_cli::check_host(&[], &mut notes).unwrap(); // the embedded reference set
/// assert_eq!(host.policies().len(), 10);
///
/// let refused = flowgate_cli::check_host(&["--policies".into(), "/nowhere".into()], &mut notes).unwrap_err();
/// assert_eq!(refused, "`/nowhere` is not a directory of policy bundles");
/// ```
pub fn check_host(options: &[std::ffi::OsString], stderr: &mut impl Write) -> Result<flowgate::Host, String> {
    let args = ["flowgate".into(), "check".into()].into_iter().chain(options.iter().cloned()).chain(["-".into()]);
    let cli = Cli::try_parse_from(args).map_err(|err| {
        let text = err.to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_owned()
    })?;
    let Command::Check { source, watch, cache, host, log, .. } = cli.command else { unreachable!("parsed as `check`") };
    let built = deciding_host(&source, watch, &host, &log, &cache, stderr)
        .and_then(|builder| anyhow::Context::context(builder.build(), check::LOADING))
        .and_then(|host| options::report_start(&host, stderr).map(|()| host).map_err(Into::into));
    built.map_err(|err| error_message(&err))
}

/// An error as the CLI prints it after `error: `: the whole chain, with
/// text from outside (paths, policy text) escaped.
fn error_message(err: &anyhow::Error) -> String {
    flowgate::escape(&format!("{err:#}"), 16 << 10)
}

/// Runs the command with the given streams; returns the exit status.
/// `serve` runs until SIGTERM or SIGINT.
pub fn run(
    cli: Cli,
    stdin: impl BufRead + Send,
    stdout: impl Write,
    stderr: impl Write + Send,
    is_terminal: bool,
) -> u8 {
    run_until(cli, stdin, stdout, stderr, is_terminal, serve::Stop::on_signals())
}

/// [`run`], where `serve` also stops when `stop` is triggered (and, with
/// [`serve::Stop::new`], only then: no signal handlers are installed).
pub fn run_until(
    cli: Cli,
    stdin: impl BufRead + Send,
    stdout: impl Write,
    mut stderr: impl Write + Send,
    is_terminal: bool,
    stop: serve::Stop,
) -> u8 {
    let result = match cli.command {
        Command::Check { source, no_progress, watch, provenance, explain, cache, host, log, file } => {
            deciding_host(&source, watch, &host, &log, &cache, &mut stderr).and_then(|builder| {
                let check = check::Check {
                    builder,
                    watch: if watch { source.policies.as_deref() } else { None },
                    file: &file,
                    progress: is_terminal && !no_progress,
                    provenance,
                    explain,
                };
                check::run(check, stdin, stdout, &mut stderr)
            })
        }
        Command::New { name, dir, sdk } => new::run(&name, &dir, sdk.as_deref(), &mut stderr),
        Command::Serve { source, cache, host, log, serve, watch } => {
            if watch {
                let _ =
                    writeln!(stderr, "note: `serve` always watches its policies directory; `--watch` changes nothing");
            }
            deciding_host(&source, true, &host, &log, &cache, &mut stderr).and_then(|builder| {
                let serve = serve::Serve { builder, watch: source.policies.as_deref(), options: &serve, stop };
                serve::run(serve, &mut stderr)
            })
        }
        Command::Build { out, target_dir, crates } => build::run(&out, target_dir.as_deref(), &crates, &mut stderr),
        Command::Test { verbose, bundles } => test::run(&bundles, verbose, stdout),
        Command::Reference { out } => reference::run(&out, &mut stderr),
        Command::Key { command: KeyCommand::New { id, out } } => signing::new_key(&id, &out, &mut stderr),
        Command::Sign { key, bundles } => signing::sign(&key, &bundles, stdout),
        Command::Verify { trust, bundles, strict } => verify::run(&trust, &bundles, strict, stdout),
        Command::Policies { overlaps, source, host } => {
            options::host_builder(&source, false, &mut stderr).and_then(|builder| {
                let vectors = if overlaps { Some(options::bundles(&source)?) } else { None };
                policies::run(host.apply(builder), vectors.as_deref(), stdout)
            })
        }
        Command::Audit { command } => run_audit(command, stdout, &mut stderr),
        Command::Digest { file } => digest::run(&file, stdin, stdout, &mut stderr),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            // Errors can carry paths and policy text from outside: escaped.
            let _ = writeln!(stderr, "error: {}", error_message(&err));
            EXIT_ERROR
        }
    }
}

/// Runs an `audit` command.
fn run_audit(command: AuditCommand, stdout: impl Write, stderr: &mut (impl Write + Send)) -> anyhow::Result<u8> {
    use audit::{prove, replay, verify, witness};
    match command {
        AuditCommand::Verify { log, key, checkpoints, witness } => {
            verify::verify(&log, &key, &checkpoints, &witness, stdout)
        }
        AuditCommand::Checkpoint { log, key } => verify::checkpoint(&log, &key, stdout, stderr),
        AuditCommand::Prove { log, seq, flow, platform, checkpoint, key } => {
            let which = match (&flow, seq) {
                (Some(flow), _) => prove::Which::Flow { flow, platform: platform.as_deref() },
                (None, Some(seq)) => prove::Which::Seq(seq),
                (None, None) => anyhow::bail!("give `--seq N` or `--flow ID`"),
            };
            prove::prove(&log, which, checkpoint.as_deref(), key.as_deref(), stdout, stderr)
        }
        AuditCommand::Check { proof, key, witness, from, record } => {
            prove::check(&proof, &key, &witness, from.as_deref(), record.as_deref(), stdout)
        }
        AuditCommand::Consistency { log, from, checkpoint, key } => {
            prove::consistency(&log, from.as_deref(), checkpoint.as_deref(), key.as_deref(), stdout, stderr)
        }
        AuditCommand::Witness { key, log_key, state, proof } => {
            witness::witness(&key, &log_key, &state, &proof, stdout, stderr)
        }
        AuditCommand::WitnessKey { id, name, out } => witness::new_key(&id, &name, &out, stderr),
        AuditCommand::Stats { log } => replay::stats(&log, stdout),
        AuditCommand::Replay { log, archive: Some(archive), host, .. } => {
            let deciders = replay::Deciders::Archived(archive, host.apply(flowgate::Host::builder()));
            replay::replay(&log, deciders, stdout)
        }
        AuditCommand::Replay { log, archive: None, source, host } => {
            let builder = options::host_builder(&source, false, stderr)?;
            replay::replay(&log, replay::Deciders::Candidate(host.apply(builder)), stdout)
        }
    }
}
