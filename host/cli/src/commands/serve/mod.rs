//! `flowgate serve`: the host as an HTTP service (HTTP/1.1 and HTTP/2,
//! optionally over TLS), for platforms that do not link Rust.
//!
//! The host is built exactly as `check` builds it (the same policy source,
//! host options and cache), and its directory is watched while serving.
//! Connections are driven by a small tokio runtime; every decision runs on
//! an evaluation thread ([`limits`]). SIGTERM (or a [`Stop`]) stops
//! accepting, lets every request in flight finish, and then closes the
//! host, so whatever the host holds open is closed only after its last
//! decision.

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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::EXIT_OK;
use crate::lines::Format;

mod auth;
mod limits;
mod metrics;
mod policies_endpoint;
mod routes;
mod stop;
mod tls;

pub use stop::Stop;

use auth::Tokens;
use limits::{Admission, Bounds};
use metrics::Metrics;

/// Streams an HTTP/2 connection may have open at once.
const MAX_STREAMS: u32 = 64;

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
    /// Headers, a TLS handshake, and a whole body must each arrive within this (else 408 or close).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    read_timeout_ms: u64,
    /// Decision requests admitted at once (reading, waiting or deciding); more get 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    queue: usize,
    /// Evaluation threads (default: one per core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Connections open at once; more are closed on accept.
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
    tokens: Option<Tokens>,
    bounds: Bounds,
    format: Format,
    /// Shutting down: `/readyz` says so, so load balancers stop sending.
    draining: AtomicBool,
}

/// Serves until stopped; then closes the host and returns 0.
pub fn run(serve: Serve<'_>, stderr: &mut (impl Write + Send)) -> anyhow::Result<u8> {
    let options = serve.options;
    let bounds = options.bounds();
    let tokens = options.token_file.as_deref().map(Tokens::from_file).transpose()?;
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let host = Arc::new(serve.builder.build().context("loading policies")?);
    crate::options::report_recovery(&host, stderr)?;
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
        let (stderr, done, metrics) = (&stderr, &done, &metrics);
        scope.spawn(move || log_events(&events, metrics, stderr, done));
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
    let slots = Arc::new(Semaphore::new(state.bounds.max_connections));
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
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // over the connection cap: closed at once
        };
        let _ = stream.set_nodelay(true);
        let connection =
            Connection { state: Arc::clone(&state), shutdown: shutting_down.clone(), _open: open.clone(), _slot: slot };
        tokio::spawn(connection.run(stream, tls.clone()));
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    let _ = shutdown.send(true);
    drop(open);
    tokio::time::timeout(state.bounds.shutdown_timeout, all_closed.recv()).await.is_ok()
}

struct Connection {
    state: Arc<State>,
    shutdown: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(TokioIo::new(stream)).await;
        };
        let handshake = tokio::time::timeout(self.state.bounds.read_timeout, acceptor.accept(stream));
        let stream = tokio::select! {
            handshake = handshake => match handshake {
                Ok(Ok(stream)) => stream,
                _ => return,
            },
            _ = self.shutdown.changed() => return,
        };
        self.serve(TokioIo::new(stream)).await;
    }

    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.state.bounds.read_timeout);
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(MAX_STREAMS);
        let state = Arc::clone(&self.state);
        let service = service_fn(move |request: hyper::Request<Incoming>| routes::handle(Arc::clone(&state), request));
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = self.shutdown.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Writes policy events to stderr and counts them, until `done`.
fn log_events(
    events: &Receiver<PolicyEvent>,
    metrics: &Metrics,
    stderr: &Mutex<&mut (impl Write + Send)>,
    done: &AtomicBool,
) {
    let log = |event: PolicyEvent| {
        metrics.event(&event);
        let mut stderr = stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(stderr, "flowgate: {event}");
    };
    while !done.load(Ordering::Relaxed) {
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => log(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
    events.try_iter().for_each(log);
}
