//! `flowgate serve`: the host as an HTTP service (HTTP/1.1 and HTTP/2,
//! optionally over TLS), for platforms that do not link Rust.
//!
//! The host is built exactly as `check` builds it (the same policy source,
//! host options and cache), and its directory is watched while serving.
//! Connections are driven by a small tokio runtime, each one held to making
//! progress (`connections`); every decision runs on an evaluation thread
//! (`limits`); a batch is decided and answered in chunks (`batch`).
//! SIGTERM (or a [`Stop`]) stops accepting, lets every request in flight
//! finish, and then closes the host, so whatever the host holds open is
//! closed only after its last decision.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use flowgate::{Host, HostBuilder, PolicyEvent};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::EXIT_OK;
use crate::lines::Format;

mod answer;
mod auth;
mod batch;
mod bodies;
mod connections;
mod limits;
mod metrics;
mod policies_endpoint;
mod routes;
mod stop;
mod tls;

pub use stop::Stop;

use auth::TokenFile;
use connections::{Connections, Slot};
use limits::{Admission, Bounds};
use metrics::Metrics;

/// Streams an HTTP/2 connection may have open at once.
const MAX_STREAMS: u32 = 64;
/// How often the token file is read again.
const TOKEN_RECHECK: Duration = Duration::from_secs(1);

/// The command line of `serve`, beside the policy source and host options it shares with `check`.
#[derive(Debug, clap::Args)]
pub struct ServeOptions {
    /// Address to listen on; port 0 picks a free port (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// PEM certificate chain: serve HTTPS (with `--tls-key`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` with one of the tokens in FILE
    /// (one a line) on every endpoint but `/healthz` and `/readyz`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Largest request body (a batch); larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// A request head (counted from the accept or the last answer, TLS
    /// handshake included), a body (from its head), and each piece of an
    /// answer must arrive or be taken within this (else 408 or close).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    read_timeout_ms: u64,
    /// Decision requests admitted at once (reading, waiting, deciding or
    /// being answered); more get 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    queue: usize,
    /// Evaluation threads (default: one per core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Connections open at once; when all are taken, a new one waits, or
    /// takes the slot of the one that has gone longest without progress.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// How long shutdown waits for the requests in flight.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    shutdown_timeout_ms: u64,
    /// Add the policy set's content id and the applied policies to every decision.
    #[arg(long)]
    provenance: bool,
}

impl ServeOptions {
    fn bounds(&self) -> Bounds {
        Bounds {
            max_body_bytes: self.max_body_bytes,
            read_timeout: Duration::from_millis(self.read_timeout_ms.max(1)),
            queue: self.queue.max(1),
            workers: self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1),
            max_connections: self.max_connections.max(1),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
        }
    }
}

/// What `flowgate serve` was asked to do.
pub struct Serve<'a> {
    /// The host to build, as `check` builds it.
    pub builder: HostBuilder,
    /// The policy directory to follow while serving.
    pub watch: Option<&'a Path>,
    /// Listening, access and bounds.
    pub options: &'a ServeOptions,
    /// What ends serving.
    pub stop: Stop,
}

/// What every request handler shares.
pub(crate) struct State {
    host: Arc<Host>,
    metrics: Arc<Metrics>,
    admission: Admission,
    tokens: Option<TokenFile>,
    bounds: Bounds,
    format: Format,
    /// Shutting down: `/readyz` says so, so load balancers stop sending.
    draining: AtomicBool,
}

/// Serves until stopped; then closes the host and returns 0.
pub fn run(serve: Serve<'_>, stderr: &mut (impl Write + Send)) -> anyhow::Result<u8> {
    let options = serve.options;
    let bounds = options.bounds();
    let tokens = options.token_file.as_deref().map(TokenFile::open).transpose()?;
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => {
            let (acceptor, warning) = tls::acceptor(cert, key)?;
            if let Some(warning) = warning {
                writeln!(stderr, "flowgate: {}", flowgate::escape(&warning, 4096))?;
            }
            Some(acceptor)
        }
        _ => None,
    };
    let host = Arc::new(serve.builder.build().context("loading policies")?);
    crate::options::report_start(&host, stderr)?;
    let events = host.subscribe();
    let watcher = serve.watch.map(|dir| host.watch(dir)).transpose().context("watching policies")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(bounds.workers)
        .thread_name("flowgate-serve")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let listener = runtime
        .block_on(TcpListener::bind(&options.listen))
        .with_context(|| format!("cannot listen on `{}`", options.listen))?;
    let address = listener.local_addr().context("reading the listening address")?;
    let metrics = Arc::new(Metrics::new(bounds.queue));
    let state = Arc::new(State {
        host: Arc::clone(&host),
        admission: Admission::new(&bounds, Arc::clone(&metrics)),
        metrics: Arc::clone(&metrics),
        tokens,
        bounds,
        format: Format::new(options.provenance),
        draining: AtomicBool::new(false),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    writeln!(stderr, "listening on {scheme}://{address}")?;
    stderr.flush()?;

    let stderr = Mutex::new(stderr);
    let done = AtomicBool::new(false);
    let finished = std::thread::scope(|scope| {
        let (stderr, done, metrics, tokens) = (&stderr, &done, &metrics, state.tokens.as_ref());
        scope.spawn(move || report(&events, metrics, tokens, stderr, done));
        let finished = runtime.block_on(accept(listener, Arc::clone(&state), tls, serve.stop));
        // Stop following the directory before the host goes.
        drop(watcher);
        done.store(true, Ordering::Relaxed);
        finished
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(state);
    let stderr = stderr.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !finished {
        writeln!(stderr, "flowgate: shutdown timeout: some requests in flight were not answered")?;
    }
    // Close the decision log after the last decision: its checkpoint signs
    // every receipt written. An evaluation still running past the shutdown
    // timeout then fails closed (its decision is not given).
    if let Some(log) = host.decision_log() {
        match log.close() {
            Ok(head) => writeln!(stderr, "flowgate: decision log closed at tree size {}", head.size)?,
            Err(err) => writeln!(stderr, "flowgate: {}", flowgate::escape(&err.to_string(), 4096))?,
        }
    }
    // Close the host explicitly, after its last decision.
    match Arc::try_unwrap(host) {
        Ok(host) => drop(host),
        Err(host) => {
            writeln!(stderr, "flowgate: an evaluation outlived the shutdown timeout; closing the host anyway")?;
            drop(host);
        }
    }
    writeln!(stderr, "flowgate: stopped")?;
    Ok(EXIT_OK)
}

/// Accepts connections until stopped; then lets every connection finish
/// its requests in flight. Returns whether they all did within the shutdown timeout.
async fn accept(listener: TcpListener, state: Arc<State>, tls: Option<TlsAcceptor>, stop: Stop) -> bool {
    let (shutdown, shutting_down) = watch::channel(false);
    // Each connection holds a sender; `recv` ends once every one is gone.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let bounds = &state.bounds;
    let connections = Arc::new(Connections::new(
        bounds.max_connections,
        bounds.read_timeout,
        Connections::default_reclaim_after(bounds.read_timeout),
        Arc::clone(&state.metrics),
    ));
    let reaper = tokio::spawn(Arc::clone(&connections).reap());
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before
                // accept: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // A free slot, or one reclaimed from the connection making the
        // least progress; until then, the next connections wait in the backlog.
        let slot = tokio::select! {
            () = &mut stopped => break,
            slot = connections.slot() => slot,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            Connection { state: Arc::clone(&state), shutdown: shutting_down.clone(), _open: open.clone(), slot };
        tokio::spawn(connection.run(stream, tls.clone()));
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    let _ = shutdown.send(true);
    drop(open);
    let finished = tokio::time::timeout(state.bounds.shutdown_timeout, all_closed.recv()).await.is_ok();
    reaper.abort();
    finished
}

struct Connection {
    state: Arc<State>,
    shutdown: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
    slot: Slot,
}

impl Connection {
    /// Serves the connection until it ends, is closed for want of progress
    /// (or to make room), or the server shuts down.
    async fn run(mut self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(TokioIo::new(stream)).await;
        };
        // The handshake is part of the time to the first request head.
        let tracker = Arc::clone(self.slot.tracker());
        let stream = tokio::select! {
            handshake = acceptor.accept(stream) => match handshake {
                Ok(stream) => stream,
                Err(_) => return,
            },
            () = tracker.closed() => return,
            _ = self.shutdown.changed() => return,
        };
        self.serve(TokioIo::new(stream)).await;
    }

    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Deadlines are the tracker's, for every protocol state alike: none of hyper's own.
        builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(MAX_STREAMS);
        let (state, tracker) = (Arc::clone(&self.state), Arc::clone(self.slot.tracker()));
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            // A complete request head: a step of the connection.
            let steps = tracker.request();
            routes::handle(Arc::clone(&state), steps, request)
        });
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let tracker = Arc::clone(self.slot.tracker());
        tokio::select! {
            _ = connection.as_mut() => {}
            // Past its deadline, or reclaimed: closed at once.
            () = tracker.closed() => {}
            _ = self.shutdown.changed() => {
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    _ = connection => {}
                    () = tracker.closed() => {}
                }
            }
        }
    }
}

/// Writes policy events to stderr and counts them, and follows the token
/// file, until `done`.
fn report(
    events: &Receiver<PolicyEvent>,
    metrics: &Metrics,
    tokens: Option<&TokenFile>,
    stderr: &Mutex<&mut (impl Write + Send)>,
    done: &AtomicBool,
) {
    let say = |line: &str| {
        let mut stderr = stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(stderr, "flowgate: {line}");
    };
    let log = |event: PolicyEvent| {
        metrics.event(&event);
        say(&event.to_string());
    };
    let mut checked = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) {
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => log(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if tokens.is_none() => return,
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(50)),
        }
        if let Some(tokens) = tokens
            && checked.elapsed() >= TOKEN_RECHECK
        {
            checked = std::time::Instant::now();
            if let Some(news) = tokens.recheck() {
                say(&flowgate::escape(&news, 4096));
            }
        }
    }
    events.try_iter().for_each(log);
}
