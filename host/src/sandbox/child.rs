//! Compiling a module in a child process, under a CPU-time limit.
//!
//! Cranelift cannot be interrupted, and its time is not linear in what the
//! shape caps can see: a module of a few kilobytes whose values stay live
//! across many loops or branches takes seconds, one of a megabyte minutes
//! (docs/threat-model.md), while honest policies take a tenth of a
//! second. No cap
//! on sizes, counts or depths separates the two without refusing honest
//! policies. A child process can be stopped: the host hands it the module
//! and its engine's settings, the kernel stops it when it has used its CPU
//! time (`RLIMIT_CPU`), and the host refuses the module, naming the limit.
//! Otherwise the child answers with the compiled module, which the host
//! loads.
//!
//! CPU time decides, not wall time: on a loaded machine a compile may take
//! many times its CPU time in wall time, and is still answered. A watchdog
//! only stops a child that makes no progress at all (no CPU time used in
//! a whole period of four times the limit: blocked, not compiling); that
//! is the child failing, not the module, and is reported so.
//!
//! A library cannot assume a binary of its own, so this is opt-in
//! ([`HostBuilder::compile_in_child`](crate::HostBuilder::compile_in_child)):
//! the program named must call [`compile_child`] (the `flowgate` command
//! does, re-running itself). What the child sends back is native code the
//! host runs: it is trusted as the program is, and as the compiler is when
//! it runs in the host.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{Pid, Resource, Rlimit, Signal, kill_process, prlimit};
use wasmtime::{Engine, Module};

use super::engine::EngineSettings;

/// What a host sends its compile child, first.
const REQUEST: &[u8; 8] = b"FGCOMPL1";
/// What the child answers: a compiled module, or the compiler's refusal.
const COMPILED: &[u8; 8] = b"FGCODE01";
const REFUSED: &[u8; 8] = b"FGFAIL01";
/// The largest module handed over (a snapshot carries the memory it was
/// taken with, up to the ceiling) and the largest answer read back.
const MAX_MODULE_BYTES: u64 = 1 << 30;
const MAX_ANSWER_BYTES: u64 = 4 << 30;

/// Where a host compiles modules: a program that calls [`compile_child`],
/// with its arguments, and the CPU time each compile may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileSandbox {
    program: PathBuf,
    args: Vec<OsString>,
    cpu_seconds: u64,
    set_by: String,
}

impl CompileSandbox {
    /// The CPU time a compile may take by default: the reference policies
    /// take about a tenth of a second each.
    pub const DEFAULT_CPU_SECONDS: u64 = 10;

    /// Runs `program` (which must call [`compile_child`]) for each compile.
    pub fn new(program: impl Into<PathBuf>) -> CompileSandbox {
        CompileSandbox {
            program: program.into(),
            args: Vec::new(),
            cpu_seconds: Self::DEFAULT_CPU_SECONDS,
            set_by: "`CompileSandbox::cpu_seconds`".to_owned(),
        }
    }

    /// How the people who see a refusal set the limit (the `flowgate`
    /// command: its `--max-compile-seconds` flag), named in
    /// [`LoadError::CompileTimedOut`](crate::LoadError::CompileTimedOut).
    pub fn limit_set_by(mut self, setting: impl Into<String>) -> CompileSandbox {
        self.set_by = setting.into();
        self
    }

    /// Adds an argument the program is run with.
    pub fn arg(mut self, arg: impl Into<OsString>) -> CompileSandbox {
        self.args.push(arg.into());
        self
    }

    /// The CPU time one compile may take, in seconds (at least 1).
    pub fn cpu_seconds(mut self, seconds: u64) -> CompileSandbox {
        self.cpu_seconds = seconds.max(1);
        self
    }

    /// The CPU time one compile may take, in seconds.
    pub fn cpu_limit(&self) -> u64 {
        self.cpu_seconds
    }

    /// `wasm` compiled by a child for an engine of `settings` (which
    /// `engine` is), then loaded into `engine`.
    pub(crate) fn compile(
        &self,
        engine: &Engine,
        settings: EngineSettings,
        wasm: &[u8],
    ) -> Result<Module, CompileError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(CompileError::Child)?;
        let pid = Pid::from_child(&child);
        // Set before the module is handed over: the child compiles nothing
        // before it has read the whole request.
        let limit = Rlimit { current: Some(self.cpu_seconds), maximum: Some(self.cpu_seconds + 1) };
        let limited = prlimit(Some(pid), Resource::Cpu, limit).map_err(|err| CompileError::Child(err.into()));
        let (done, finished) = mpsc::channel::<()>();
        let period = Duration::from_secs(self.cpu_seconds.saturating_mul(4));
        let watchdog = std::thread::spawn(move || stop_if_stalled(pid, period, &finished));
        let answer = limited.and_then(|_| exchange(&mut child, settings, wasm));
        if answer.is_err() {
            let _ = child.kill();
        }
        let _ = done.send(());
        let stalled = watchdog.join().unwrap_or(true);
        let status = child.wait().map_err(CompileError::Child)?;
        // SIGXCPU at the soft limit (its default action ends the child),
        // SIGKILL at the hard one, a second later, if it did not end.
        let out_of_cpu = match status.signal() {
            Some(libc::SIGXCPU) => true,
            Some(libc::SIGKILL) => !stalled && answer.is_ok(),
            _ => false,
        };
        if out_of_cpu {
            return Err(CompileError::TimedOut { cpu_seconds: self.cpu_seconds, set_by: self.set_by.clone() });
        }
        if stalled {
            return Err(CompileError::Child(std::io::Error::other(format!(
                "the compile child `{}` used no CPU time for {} s, and was stopped",
                self.program.display(),
                period.as_secs()
            ))));
        }
        let answer = answer?;
        if let Some(message) = answer.strip_prefix(REFUSED) {
            return Err(CompileError::Invalid(wasmtime::Error::msg(String::from_utf8_lossy(message).into_owned())));
        }
        let Some(code) = answer.strip_prefix(COMPILED).filter(|_| status.success()) else {
            return Err(CompileError::Child(std::io::Error::other(format!(
                "`{}` is not a compile child: it answered no compiled module ({status})",
                self.program.display()
            ))));
        };
        // SAFETY: wasmtime requires `unsafe` because the bytes are native
        // code it will run. They are what the child, the program the
        // platform named, compiled from `wasm` with this wasmtime and these
        // settings: trusted as that program is, and as the compiler is when
        // it runs here. wasmtime checks its header and the engine's
        // compatibility again.
        #[allow(unsafe_code)]
        unsafe {
            Module::deserialize(engine, code).map_err(CompileError::Invalid)
        }
    }
}

/// Waits until `finished` is signalled; meanwhile, every `period`, stops
/// the child `pid` if it used no CPU time since the last look (or its CPU
/// time cannot be read). Returns whether it stopped it. A child that
/// compiles uses CPU time, however loaded the machine, and its CPU limit
/// ends it; one that uses none is waiting for something that will not come.
fn stop_if_stalled(pid: Pid, period: Duration, finished: &mpsc::Receiver<()>) -> bool {
    let mut used = Some(0);
    while finished.recv_timeout(period) == Err(mpsc::RecvTimeoutError::Timeout) {
        let now = cpu_ticks(pid);
        if now.is_none() || now == used {
            // The child is not reaped before this thread is joined, so its
            // pid cannot have been given to another process.
            let _ = kill_process(pid, Signal::KILL);
            return true;
        }
        used = now;
    }
    false
}

/// The CPU time `pid` has used, all its threads, in clock ticks (user and
/// system: fields 14 and 15 of `/proc/PID/stat`, after the command name,
/// which may hold spaces and parentheses).
fn cpu_ticks(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Hands `wasm` to the child and reads its answer to the end.
fn exchange(child: &mut std::process::Child, settings: EngineSettings, wasm: &[u8]) -> Result<Vec<u8>, CompileError> {
    let mut stdin = child.stdin.take().expect("piped");
    let sent = stdin
        .write_all(REQUEST)
        .and_then(|()| stdin.write_all(&settings.to_bytes()))
        .and_then(|()| stdin.write_all(&(wasm.len() as u64).to_le_bytes()))
        .and_then(|()| stdin.write_all(wasm));
    drop(stdin);
    sent.map_err(CompileError::Child)?;
    let mut answer = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    stdout.take(MAX_ANSWER_BYTES).read_to_end(&mut answer).map_err(CompileError::Child)?;
    Ok(answer)
}

/// Why a module could not be compiled.
#[derive(Debug)]
pub(crate) enum CompileError {
    /// The compiler refused it.
    Invalid(wasmtime::Error),
    /// The compile child used up its CPU time.
    TimedOut {
        /// Its limit.
        cpu_seconds: u64,
        /// How the limit is set.
        set_by: String,
    },
    /// The compile child could not be run, stalled, or answered nonsense.
    Child(std::io::Error),
}

/// The compile child's side: reads a module and its engine's settings from
/// `input`, compiles it, and writes the compiled module (or the compiler's
/// refusal) to `output`. Returns the process's exit status. A program
/// named in a [`CompileSandbox`] calls this when run with the arguments
/// given there, and does nothing else.
pub fn compile_child(mut input: impl Read, mut output: impl Write) -> u8 {
    let Some((settings, wasm)) = read_request(&mut input) else { return 2 };
    let answer = Engine::new(&settings.config()).and_then(|engine| engine.precompile_module(&wasm));
    let written = match answer {
        Ok(code) => output.write_all(COMPILED).and_then(|()| output.write_all(&code)),
        Err(err) => output.write_all(REFUSED).and_then(|()| output.write_all(format!("{err:#}").as_bytes())),
    };
    if written.and_then(|()| output.flush()).is_ok() { 0 } else { 2 }
}

fn read_request(input: &mut impl Read) -> Option<(EngineSettings, Vec<u8>)> {
    let mut head = [0u8; 8 + EngineSettings::BYTES + 8];
    input.read_exact(&mut head).ok()?;
    if &head[..8] != REQUEST {
        return None;
    }
    let settings = EngineSettings::from_bytes(head[8..8 + EngineSettings::BYTES].try_into().ok()?)?;
    let len = u64::from_le_bytes(head[8 + EngineSettings::BYTES..].try_into().ok()?);
    if len > MAX_MODULE_BYTES {
        return None;
    }
    let mut wasm = Vec::with_capacity(len as usize);
    input.take(len).read_to_end(&mut wasm).ok()?;
    (wasm.len() as u64 == len).then_some((settings, wasm))
}
