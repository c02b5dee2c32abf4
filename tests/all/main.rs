//! Flowgate's integration tests: one binary, a module per concern.

mod agreement;
mod authoring;
mod cache;
mod cache_trust;
mod cli;
mod docs;
mod generated;
mod hostile_records;
mod isolation;
mod layers;
mod loading;
mod peers;
mod policy_vectors;
mod records;
mod receipts;
mod reload;
mod sandbox;
mod serve;
mod serve_clients;
mod serve_connections;
mod signatures;
mod spec_vectors;
mod vocabulary;
mod watch_identity;

use std::sync::OnceLock;

use clap::Parser;
use flowgate::{Bundle, Host, HostBuilder};

/// The reference bundles, as the CLI embeds them.
pub fn reference_bundles() -> Vec<Bundle> {
    flowgate_reference_set::bundles()
        .map(|(name, manifest, wasm)| Bundle::from_bytes(name, manifest, wasm.to_vec()).unwrap())
        .collect()
}

/// A builder holding the reference bundles.
pub fn reference_builder() -> HostBuilder {
    reference_bundles().into_iter().fold(Host::builder(), HostBuilder::bundle)
}

/// One host with the reference set, shared by the tests that only read it.
pub fn reference_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| reference_builder().build().unwrap())
}

/// The ten reference policies compiled natively, combined as the host
/// combines their Wasm builds: the oracle for whole decisions.
pub fn native_reference() -> flowgate::testing::NativeSet {
    flowgate::testing::NativeSet::new(
        flowgate_reference_set::native()
            .into_iter()
            .map(|(name, policy)| (flowgate_reference_set::manifest(name).unwrap(), policy)),
    )
    .unwrap()
}

/// This host's schema (every string read), as `.wat` text fixtures embed
/// it: each `{{SCHEMA}}` becomes the text, each `{{SCHEMA_LEN}}` its length.
pub fn with_schema(wat: &str) -> String {
    let schema = flowgate::sdk::schema::Schema::current(flowgate::sdk::StringFields::ALL).to_text();
    let escaped: String = schema.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat.replace("{{SCHEMA}}", &escaped).replace("{{SCHEMA_LEN}}", &schema.len().to_string())
}

/// A `flowgate_schema` export that writes this host's schema (every string
/// read) at `at` with its own stores and returns it: for shells whose data
/// segments are not kept (`generated.rs`) and for inline test guests.
pub fn schema_func(at: u32) -> String {
    let schema = flowgate::sdk::schema::Schema::current(flowgate::sdk::StringFields::ALL).to_text();
    let stores: String = schema
        .as_bytes()
        .chunks(8)
        .enumerate()
        .map(|(n, chunk)| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            format!("(i64.store (i32.const {}) (i64.const {}))", at as usize + 8 * n, i64::from_le_bytes(word))
        })
        .collect();
    format!(
        r#"(func (export "flowgate_schema") (result i64) {stores} (i64.const {packed}))"#,
        packed = (i64::from(at) << 32) | schema.len() as i64
    )
}

/// What a CLI run printed, and its exit status.
pub struct CliRun {
    /// The exit status.
    pub status: u8,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Runs `flowgate ARGS` in-process with `stdin`.
pub fn flowgate(args: &[&str], stdin: &[u8]) -> CliRun {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let status = match flowgate_cli::Cli::try_parse_from(std::iter::once("flowgate").chain(args.iter().copied())) {
        Ok(cli) => flowgate_cli::run(cli, stdin, &mut stdout, &mut stderr, false),
        Err(err) => {
            stderr.extend_from_slice(err.to_string().as_bytes());
            err.exit_code() as u8
        }
    };
    CliRun { status, stdout: String::from_utf8(stdout).unwrap(), stderr: String::from_utf8(stderr).unwrap() }
}

/// The path of a file in the repository, from the tests crate.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// An empty scratch directory for one test, under the system's temp dir.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowgate-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
