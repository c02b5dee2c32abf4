//! Load on `flowgate serve`, beside `flowgate check` on the same records.
//!
//! ```sh
//! cargo run --release -p flowgate-cli --example serve_load -- [SECONDS] [RECORDS] [BATCH] [single|batch]
//! ```
//!
//! Generates RECORDS seeded records (default 20,000), times `flowgate check`
//! on them (less its start-up), starts `flowgate serve` in-process on a free loopback port, and
//! drives `POST /v1/decisions` and `POST /v1/decisions/batch` (BATCH records
//! a request, default 1,000) at concurrency 1, 16 and 64, each over its own
//! keep-alive HTTP/1.1 connection (a last argument `single` or `batch`
//! drives only that endpoint, for profiling). Every cell stops after
//! SECONDS (default 3) or after its request cap, whichever comes first; it
//! only ever talks to 127.0.0.1. Prints a Markdown table: decisions per
//! second, p50, p99 and p99.9 latency per request, and the ratio to `check`
//! (timed with a module cache, before the server runs and after; the
//! higher of the two is used, the stricter comparison).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use flowgate_cli::serve::Stop;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Most requests one cell sends, whatever the time.
const MAX_REQUESTS: usize = 200_000;
const CONCURRENCY: [usize; 3] = [1, 16, 64];

/// The server's stderr, kept to find its address.
#[derive(Clone, Default)]
struct Stderr(Arc<Mutex<Vec<u8>>>);

impl Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |n: usize, default: usize| args.get(n).map_or(default, |a| a.parse().expect("a number"));
    let seconds = Duration::from_secs(arg(0, 3) as u64);
    let count = arg(1, 20_000);
    let batch = arg(2, 1_000).max(1);
    let only = args.get(3).map(String::as_str);

    let flows = flowgate_reference_set::sample::flows(7, count);
    let lines: Vec<String> = flows.iter().map(|flow| flow.to_json()).collect();
    let file = std::env::temp_dir().join(format!("flowgate-serve-load-{}.jsonl", std::process::id()));
    std::fs::write(&file, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();

    // `flowgate check` on the same records, less its start-up (checking an
    // empty file), as the server has started before it is measured: best of
    // three, before the server runs and after. A module cache keeps the
    // start-up short (milliseconds, not the compile), so the difference is
    // the work, not the noise of two large numbers.
    let empty = file.with_extension("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let cache = std::env::temp_dir().join(format!("flowgate-serve-load-cache-{}", std::process::id()));
    let check = |path: &std::path::Path| {
        let argv =
            ["flowgate", "check", "--no-progress", "--cache-dir", cache.to_str().unwrap(), path.to_str().unwrap()];
        let cli = flowgate_cli::Cli::try_parse_from(argv).unwrap();
        let started = Instant::now();
        let status = flowgate_cli::run(cli, &b""[..], std::io::sink(), std::io::sink(), false);
        assert_eq!(status, 0);
        started.elapsed()
    };
    check(&empty); // fills the cache
    let check_rate = || {
        let start_up = (0..3).map(|_| check(&empty)).min().unwrap();
        let work = (0..3).map(|_| check(&file)).min().unwrap();
        count as f64 / work.saturating_sub(start_up).as_secs_f64()
    };
    let check_before = check_rate();

    let stop = Stop::new();
    let stderr = Stderr::default();
    let server = {
        let (stop, stderr) = (stop.clone(), stderr.clone());
        let cli = flowgate_cli::Cli::try_parse_from(["flowgate", "serve", "--listen", "127.0.0.1:0"]).unwrap();
        std::thread::spawn(move || flowgate_cli::run_until(cli, &b""[..], std::io::sink(), stderr, false, stop))
    };
    let address: SocketAddr = loop {
        let text = String::from_utf8_lossy(&stderr.0.lock().unwrap()).into_owned();
        // A whole line only: it may arrive in several writes.
        let whole = text.find('\n').map_or("", |end| &text[..end]);
        if let Some(address) = whole.strip_prefix("listening on http://") {
            break address.parse().unwrap();
        }
        assert!(!server.is_finished(), "the server did not start: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(address.ip().is_loopback());

    let singles: Arc<Vec<Bytes>> = Arc::new(lines.iter().map(|line| Bytes::from(line.clone())).collect());
    let batches: Arc<Vec<Bytes>> = Arc::new(
        lines
            .chunks(batch)
            .map(|chunk| Bytes::from(chunk.iter().map(|l| format!("{l}\n")).collect::<String>()))
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rows = Vec::new();
    let mut failed = 0;
    for (name, path, bodies, per_request) in
        [("single", "/v1/decisions", &singles, 1), ("batch", "/v1/decisions/batch", &batches, batch)]
    {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        for concurrency in CONCURRENCY {
            let cell = runtime.block_on(drive(address, path, Arc::clone(bodies), concurrency, seconds));
            let rate = (cell.latencies.len() * per_request) as f64 / cell.elapsed.as_secs_f64();
            let [p50, p99, p999] = [0.50, 0.99, 0.999].map(|p| micros(percentile(&cell.latencies, p)));
            let row = format!(
                "| {name} ({per_request} a request) | {concurrency} | {} | {rate:.0} | {p50} | {p99} | {p999} |",
                cell.latencies.len()
            );
            eprintln!("{row}");
            if let Some(first) = cell.failures.first() {
                eprintln!("  {} requests failed, the first: {first}", cell.failures.len());
            }
            failed += cell.failures.len();
            rows.push((row, rate));
        }
    }
    let cuts = runtime.block_on(cuts(address));
    stop.trigger();
    assert_eq!(server.join().unwrap(), 0);
    let check_after = check_rate();
    let check = check_before.max(check_after);
    println!(
        "records: {count}; `flowgate check` on them: {check:.0} decisions/s (best of 3 before serving and after, less its start-up: {check_before:.0} and {check_after:.0})\n"
    );
    println!("| endpoint | concurrency | requests | decisions/s | p50 | p99 | p99.9 | vs check |");
    println!("|---|---|---|---|---|---|---|---|");
    for (row, rate) in rows {
        println!("{row} {:.2} |", rate / check);
    }
    println!("\nrequests not answered 200: {failed}; connections the server closed:\n{cuts}");
    assert_eq!(failed, 0, "every request of a well-behaved client is answered");
    let _ = std::fs::remove_file(&empty);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&cache);
}

struct Cell {
    latencies: Vec<Duration>,
    /// Requests not answered 200, and why.
    failures: Vec<String>,
    elapsed: Duration,
}

/// `concurrency` connections, each sending one request after another until time or the cap.
async fn drive(
    address: SocketAddr,
    path: &'static str,
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    seconds: Duration,
) -> Cell {
    let started = Instant::now();
    let deadline = started + seconds;
    let per_connection = MAX_REQUESTS / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|connection| {
            let bodies = Arc::clone(&bodies);
            tokio::spawn(async move {
                let mut sender = connect(address).await;
                let mut latencies = Vec::new();
                let mut failures = Vec::new();
                let mut next = connection;
                while latencies.len() < per_connection && Instant::now() < deadline {
                    let body = bodies[next % bodies.len()].clone();
                    next += concurrency;
                    let request = hyper::Request::post(path).header("host", "load").body(Full::new(body)).unwrap();
                    let sent = Instant::now();
                    let answered = async {
                        // hyper's client wants its connection ready (the previous answer's end processed).
                        sender.ready().await.map_err(|err| err.to_string())?;
                        let response = sender.send_request(request).await.map_err(|err| err.to_string())?;
                        let status = response.status();
                        let body = response.into_body().collect().await.map_err(|err| err.to_string())?;
                        match status {
                            hyper::StatusCode::OK => Ok(()),
                            _ => Err(format!("{status}: {}", String::from_utf8_lossy(&body.to_bytes()))),
                        }
                    };
                    match answered.await {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(failure) => {
                            // Counted, and the next request goes on a new connection.
                            failures.push(failure);
                            sender = connect(address).await;
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    for task in tasks {
        let (answered, failed) = task.await.unwrap();
        latencies.extend(answered);
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Cell { latencies, failures, elapsed }
}

/// A keep-alive HTTP/1.1 connection to the server.
async fn connect(address: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(driver);
    sender
}

/// The server's count of connections it closed, by reason (its metrics).
async fn cuts(address: SocketAddr) -> String {
    let mut sender = connect(address).await;
    let request = hyper::Request::get("/metrics").header("host", "load").body(Full::new(Bytes::new())).unwrap();
    let body = sender.send_request(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|line| line.starts_with("flowgate_connections_closed_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn micros(duration: Duration) -> String {
    if duration < Duration::from_millis(10) {
        format!("{:.0} µs", duration.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", duration.as_secs_f64() * 1e3)
    }
}
