//! `flowgate serve`: a real server on a free loopback port, driven by a
//! real HTTP client (hyper's), and by raw sockets where a test plays a slow
//! or stalled client. Every endpoint, every error, a 10,000-record batch
//! against `flowgate check`, hot reload under load, graceful shutdown.
//! (SIGTERM through the real binary: `host/cli/tests/serve_signal.rs`.)

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use flowgate_cli::serve::Stop;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{flowgate, scratch_dir};

pub(crate) const USE: &str = r#"{"id":"a","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#;
const SELL: &str =
    r#"{"id":"b","platform":{"id":"p"},"action":"sell","data":{"categories":["contact"]},"purpose":"service"}"#;
const NO_BASIS: &str =
    r#"{"id":"c","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#;

/// The longest any test waits for the server to do something.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Whatever the server writes on stderr, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct Stderr(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (text, changed) = &*self.0;
        text.lock().unwrap().extend_from_slice(bytes);
        changed.notify_all();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stderr {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.0.lock().unwrap()).into_owned()
    }

    /// Waits until the text holds `wanted` and the rest of its line, or the server thread ended.
    pub(crate) fn wait_for(&self, wanted: &str, server: &std::thread::JoinHandle<u8>) -> String {
        let (text, changed) = &*self.0;
        let deadline = Instant::now() + PATIENCE;
        let mut guard = text.lock().unwrap();
        loop {
            let now = String::from_utf8_lossy(&guard).into_owned();
            // Whole lines only: a line may arrive in several writes.
            let whole = now.find(wanted).is_some_and(|at| now[at..].contains('\n'));
            if whole || server.is_finished() || Instant::now() > deadline {
                return now;
            }
            guard = changed.wait_timeout(guard, Duration::from_millis(50)).unwrap().0;
        }
    }
}

/// A server run in-process through `flowgate_cli::run_until`, as the binary runs it.
pub(crate) struct Server {
    pub(crate) address: SocketAddr,
    stop: Stop,
    pub(crate) stderr: Stderr,
    pub(crate) thread: Option<std::thread::JoinHandle<u8>>,
}

impl Server {
    pub(crate) fn start(args: &[&str]) -> Server {
        let argv: Vec<String> =
            ["flowgate", "serve", "--listen", "127.0.0.1:0"].iter().chain(args).map(|s| s.to_string()).collect();
        let cli = flowgate_cli::Cli::try_parse_from(&argv).unwrap();
        let (stop, stderr) = (Stop::new(), Stderr::default());
        let thread = {
            let (stop, stderr) = (stop.clone(), stderr.clone());
            std::thread::spawn(move || flowgate_cli::run_until(cli, &b""[..], std::io::sink(), stderr, false, stop))
        };
        let text = stderr.wait_for("listening on ", &thread);
        let address = text
            .lines()
            .find_map(|line| line.strip_prefix("listening on http://").or(line.strip_prefix("listening on https://")))
            .unwrap_or_else(|| panic!("no address on stderr: {text}"))
            .parse()
            .unwrap();
        Server { address, stop, stderr, thread: Some(thread) }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the server as SIGTERM would; its exit status and stderr.
    pub(crate) fn stop(mut self) -> (u8, String) {
        self.stop.trigger();
        let status = self.thread.take().unwrap().join().unwrap();
        (status, self.stderr.text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.trigger();
            let _ = thread.join();
        }
    }
}

/// One server for the tests that only read: the reference set, default bounds
/// but for an 8 MiB body limit.
fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&["--max-body-bytes", "8388608"]))
}

/// An answer, whole.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(request: Request<Full<Bytes>>) -> Reply {
    send_on(&client(), request).await
}

async fn send_on(client: &Client<HttpConnector, Full<Bytes>>, request: Request<Full<Bytes>>) -> Reply {
    let response = client.request(request).await.expect("the server answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the whole body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body: String::from_utf8(body.to_vec()).unwrap() }
}

pub(crate) async fn get(url: &str) -> Reply {
    send(Request::get(url).body(Full::default()).unwrap()).await
}

pub(crate) async fn post(url: &str, body: impl Into<Bytes>) -> Reply {
    send(Request::post(url).body(Full::new(body.into())).unwrap()).await
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

/// What `flowgate check` prints for `input`: stdout, and the reasons of its invalid lines by line number.
pub(crate) fn check(input: &str) -> (String, Vec<(usize, String)>) {
    let run = flowgate(&["check", "-"], input.as_bytes());
    let errors = run
        .stderr
        .lines()
        .filter_map(|line| {
            let (number, reason) = line.strip_prefix("line ")?.split_once(": ")?;
            Some((number.parse().ok()?, reason.to_owned()))
        })
        .collect();
    (run.stdout, errors)
}

/// The value of metric line `name` (with its labels), if present.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers() {
    let server = shared();
    let health = get(&server.url("/healthz")).await;
    assert_eq!((health.status, json(&health.body)["status"].as_str()), (StatusCode::OK, Some("alive")));

    let ready = get(&server.url("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let policy_set = json(&ready.body)["policy_set"].as_str().unwrap().to_owned();

    let policies = get(&server.url("/v1/policies")).await;
    assert_eq!(policies.status, StatusCode::OK);
    let policies = json(&policies.body);
    assert_eq!(policies["policy_set"].as_str(), Some(policy_set.as_str()));
    let listed = policies["policies"].as_array().unwrap();
    let expected = crate::reference_host().policies();
    assert_eq!(listed.len(), expected.len());
    for (listed, status) in listed.iter().zip(&expected) {
        assert_eq!(listed["name"].as_str(), Some(status.info.name.as_str()));
        assert_eq!(listed["version"].as_str(), Some(status.info.version.as_str()));
        assert_eq!(listed["digest"].as_str(), Some(status.info.digest.to_string().as_str()));
        assert_eq!(listed["limits"]["deadline_ms"].as_u64(), Some(status.limits.deadline_ms));
        assert_eq!(listed["signers"].as_array().map(Vec::len), Some(0), "the embedded set is not signed");
        assert_eq!(listed["quarantined"].as_bool(), Some(false));
        assert_eq!(listed["faults"].as_u64(), Some(0));
    }

    // One decision: exactly what `check` prints for the record.
    let decided = post(&server.url("/v1/decisions"), USE).await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
    assert_eq!(decided.headers["content-type"], "application/json");
    assert_eq!(decided.body, check(USE).0);
    assert_eq!(json(&decided.body)["effect"].as_str(), Some("allow"));
    let denied = post(&server.url("/v1/decisions"), NO_BASIS).await;
    assert_eq!(json(&denied.body)["effect"].as_str(), Some("deny"));

    let batch = post(&server.url("/v1/decisions/batch"), format!("{USE}\n{NO_BASIS}\n")).await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    assert_eq!(batch.headers["content-type"], "application/x-ndjson");
    assert_eq!(batch.headers["flowgate-invalid-lines"], "0");
    assert_eq!(batch.body, check(&format!("{USE}\n{NO_BASIS}\n")).0);

    let metrics = get(&server.url("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body;
    assert!(metric(&text, r#"flowgate_decisions_total{effect="allow"}"#).unwrap() >= 2.0, "{text}");
    assert!(metric(&text, r#"flowgate_decisions_total{effect="deny"}"#).unwrap() >= 2.0, "{text}");
    assert!(metric(&text, r#"flowgate_policy_answers_total{policy="lawful-basis",effect="deny"}"#).unwrap() >= 2.0);
    assert!(metric(&text, r#"flowgate_rule_fired_total{policy="lawful-basis",rule="no-basis"}"#).unwrap() >= 2.0);
    assert!(metric(&text, r#"flowgate_evaluation_seconds_count{endpoint="single"}"#).unwrap() >= 2.0);
    assert!(metric(&text, r#"flowgate_evaluation_seconds_count{endpoint="batch"}"#).unwrap() >= 1.0);
    assert!(metric(&text, r#"flowgate_http_requests_total{route="decisions",status="200"}"#).unwrap() >= 2.0);
    assert_eq!(metric(&text, r#"flowgate_policy_faults{policy="lawful-basis",version="1.0.0"}"#), Some(0.0));
    assert_eq!(metric(&text, r#"flowgate_policy_quarantined{policy="lawful-basis",version="1.0.0"}"#), Some(0.0));
    for gauge in ["flowgate_queue_depth", "flowgate_requests_in_flight", "flowgate_queue_capacity"] {
        assert!(metric(&text, gauge).is_some(), "{gauge} in {text}");
    }
    assert!(text.contains("# TYPE flowgate_evaluation_seconds histogram"));

    let missing = get(&server.url("/v1/nothing")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let wrong = get(&server.url("/v1/decisions")).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers["allow"], "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_gets_the_field_error_check_prints() {
    let server = shared();
    for (body, expected) in
        [(SELL, "`action`: unknown variant `sell`"), ("this is not json", "a record is a JSON object")]
    {
        let reply = post(&server.url("/v1/decisions"), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        let error = json(&reply.body)["error"].as_str().unwrap().to_owned();
        let (_, cli_errors) = check(body);
        assert_eq!(error, cli_errors[0].1, "the same words as the CLI");
        assert!(error.starts_with(expected), "{error}");
    }
    let empty = post(&server.url("/v1/decisions"), " \n").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(json(&empty.body)["error"].as_str().unwrap().contains("empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_invalid_lines_by_number_and_decides_the_rest() {
    let server = shared();
    let input = format!("{USE}\nthis is not json\n\n{SELL}\r\n{NO_BASIS}");
    let reply = post(&server.url("/v1/decisions/batch"), input.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.headers["flowgate-invalid-lines"], "2");
    let (cli_stdout, cli_errors) = check(&input);
    let lines: Vec<serde_json::Value> = reply.body.lines().map(json).collect();
    assert_eq!(lines.len(), 4, "one answer per non-blank line, in order: {}", reply.body);
    let errors: Vec<(usize, String)> = lines
        .iter()
        .filter(|line| line.get("error").is_some())
        .map(|line| (line["line"].as_u64().unwrap() as usize, line["error"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(errors, cli_errors, "the CLI's line numbers and words");
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4]);
    let decisions: String = reply
        .body
        .lines()
        .filter(|line| json(line).get("error").is_none())
        .map(|line| line.to_owned() + "\n")
        .collect();
    assert!(reply.body.lines().nth(1).unwrap().starts_with(r#"{"line":2,"error":"#), "{}", reply.body);
    assert_eq!(decisions, cli_stdout, "the valid lines decided as check decides them");
    assert_eq!([lines[0]["id"].as_str(), lines[3]["id"].as_str()], [Some("a"), Some("c")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_10000_records_is_what_check_prints() {
    let server = shared();
    let flows = flowgate_reference_set::sample::flows(13, 10_000);
    let input: String = flows.iter().map(|flow| flow.to_json() + "\n").collect();
    let reply = post(&server.url("/v1/decisions/batch"), input.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let (cli_stdout, cli_errors) = check(&input);
    assert!(cli_errors.is_empty());
    assert_eq!(reply.body.lines().count(), 10_000);
    assert!(reply.body == cli_stdout, "the batch differs from `flowgate check` on the same records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_served_alongside_http1() {
    let server = shared();
    let stream = TcpStream::connect(server.address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::post(server.url("/v1/decisions")).body(Full::new(Bytes::from(USE))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8(body.to_vec()).unwrap(), check(USE).0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413() {
    let server = shared();
    // Raw sockets, sending no more than the server reads: a client still
    // writing when the server answers early would see its connection reset.
    // A length over the limit is refused before any of the body is read.
    let head = "POST /v1/decisions/batch HTTP/1.1\r\nhost: t\r\ncontent-length: 9437184\r\n\r\n";
    let answer = raw_exchange(server, head, b"").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than the 8388608 bytes allowed"), "{answer}");
    // Without a length up front (chunked): cut off once past the limit.
    let head = "POST /v1/decisions/batch HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut chunks = Vec::new();
    for size in [4 << 20, 4 << 20, 1] {
        chunks.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        chunks.resize(chunks.len() + size, b' ');
        if size > 1 {
            chunks.extend_from_slice(b"\r\n"); // the last chunk's end is never read: nothing after it
        }
    }
    let answer = raw_exchange(server, head, &chunks).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A single record is capped at a line's limit (1 MiB).
    let head = "POST /v1/decisions HTTP/1.1\r\nhost: t\r\ncontent-length: 1048577\r\n\r\n";
    assert!(raw_exchange(server, head, b"").await.starts_with("HTTP/1.1 413"));
    // A body at the limit is read (and, being blanks, answered with no lines).
    let reply = post(&server.url("/v1/decisions/batch"), vec![b'\n'; 8 << 20]).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, ""));
    // And the server goes on deciding.
    assert_eq!(post(&server.url("/v1/decisions"), USE).await.status, StatusCode::OK);
    let text = get(&server.url("/metrics")).await.body;
    assert!(metric(&text, r#"flowgate_http_requests_total{route="batch",status="413"}"#) >= Some(2.0), "{text}");
}

/// Sends `head` and `body` on a new connection; the whole answer, up to the server's close.
pub(crate) async fn raw_exchange(server: &Server, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_all(&mut stream).await
}

/// Opens a raw connection and sends the head of a POST with `length`, and `part` of its body.
pub(crate) async fn partial_post(server: &Server, path: &str, length: usize, part: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(part).await.unwrap();
    stream
}

/// Reads a raw HTTP/1.1 answer to its end (the requests ask the server to close after it).
pub(crate) async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("the server answers").unwrap();
    String::from_utf8(answer).unwrap()
}

/// Polls `/metrics` until `name` reaches `value`.
pub(crate) async fn wait_for_metric(server: &Server, name: &str, value: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = get(&server.url("/metrics")).await.body;
        if metric(&text, name) == Some(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {value}: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_time_out() {
    let server = Server::start(&["--read-timeout-ms", "300"]);
    // The head arrives, half the body never does: 408, and the connection closes.
    let mut stalled = partial_post(&server, "/v1/decisions", USE.len(), &USE.as_bytes()[..10]).await;
    let answer = read_all(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 300 ms"), "{answer}");
    // Half a head: the connection is closed without a request being made.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(b"POST /v1/decisions HTTP/1.1\r\nhost: te").await.unwrap();
    let answer = read_all(&mut stream).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Neither took a place for good.
    assert_eq!(post(&server.url("/v1/decisions"), USE).await.status, StatusCode::OK);
    wait_for_metric(&server, "flowgate_requests_in_flight", 0.0).await;
    let text = get(&server.url("/metrics")).await.body;
    assert_eq!(metric(&text, r#"flowgate_http_requests_total{route="decisions",status="408"}"#), Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let server = Server::start(&["--queue", "2"]);
    let mut first = partial_post(&server, "/v1/decisions", USE.len(), &USE.as_bytes()[..5]).await;
    let mut second = partial_post(&server, "/v1/decisions/batch", USE.len(), &USE.as_bytes()[..5]).await;
    wait_for_metric(&server, "flowgate_requests_in_flight", 2.0).await;
    let refused = post(&server.url("/v1/decisions"), USE).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert_eq!(refused.headers["retry-after"], "1");
    let refused = post(&server.url("/v1/decisions/batch"), USE).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    // Probes and metrics take no place in the queue.
    assert_eq!(get(&server.url("/readyz")).await.status, StatusCode::OK);
    // The admitted ones finish, and places free up.
    for stream in [&mut first, &mut second] {
        stream.write_all(&USE.as_bytes()[5..]).await.unwrap();
        let answer = read_all(stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#""id":"a""#), "{answer}");
    }
    assert_eq!(post(&server.url("/v1/decisions"), USE).await.status, StatusCode::OK);
    let text = get(&server.url("/metrics")).await.body;
    assert_eq!(metric(&text, r#"flowgate_http_requests_total{route="decisions",status="503"}"#), Some(1.0), "{text}");
    assert_eq!(metric(&text, "flowgate_queue_capacity"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_tls_guard_access() {
    let dir = scratch_dir("serve-tls");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tokens"), "# platform A\nsecret-token-a\nsecret-token-b\n").unwrap();
    set_mode(&dir.join("tokens"), 0o600);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let server = Server::start(&[
        "--tls-cert",
        &path("cert.pem"),
        "--tls-key",
        &path("key.pem"),
        "--token-file",
        &path("tokens"),
    ]);
    assert!(server.stderr.text().contains("listening on https://127.0.0.1:"), "{}", server.stderr.text());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_client = |alpn: &[u8]| {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let request = |path: &str, token: Option<&str>| {
        let (method, body) =
            if path == "/v1/decisions" { (Method::POST, Bytes::from(USE)) } else { (Method::GET, Bytes::new()) };
        let mut builder = Request::builder().method(method).uri(format!("https://localhost{path}"));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(Full::new(body)).unwrap()
    };

    // HTTP/1.1 over TLS, a connection per request (an answer that leaves
    // the body unread may close its connection).
    let connector = tls_client(b"http/1.1");
    let statuses = [
        (request("/v1/decisions", None), StatusCode::UNAUTHORIZED),
        (request("/v1/decisions", Some("secret-token-")), StatusCode::UNAUTHORIZED),
        (request("/v1/decisions", Some("secret-token-a-and-more")), StatusCode::UNAUTHORIZED),
        (request("/v1/policies", None), StatusCode::UNAUTHORIZED),
        (request("/metrics", Some("wrong")), StatusCode::UNAUTHORIZED),
        (request("/healthz", None), StatusCode::OK),
        (request("/readyz", None), StatusCode::OK),
        (request("/v1/decisions", Some("secret-token-b")), StatusCode::OK),
        (request("/metrics", Some("secret-token-a")), StatusCode::OK),
    ];
    for (request, expected) in statuses {
        let path = request.uri().path().to_owned();
        let tcp = TcpStream::connect(server.address).await.unwrap();
        let tls = connector.connect(name.clone(), tcp).await.unwrap();
        let (mut h1, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        let response = h1.send_request(request).await.unwrap();
        assert_eq!(response.status(), expected, "{path}");
        if expected == StatusCode::UNAUTHORIZED {
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
        response.into_body().collect().await.unwrap();
    }

    // HTTP/2, chosen by ALPN.
    let tcp = TcpStream::connect(server.address).await.unwrap();
    let tls = tls_client(b"h2").connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let response = h2.send_request(request("/v1/decisions", Some("secret-token-a"))).await.unwrap();
    assert_eq!((response.version(), response.status()), (hyper::Version::HTTP_2, StatusCode::OK));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8(body.to_vec()).unwrap(), check(USE).0);

    // Plain HTTP to the TLS port gets no answer.
    let mut plain = TcpStream::connect(server.address).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, plain.read_to_end(&mut answer)).await.unwrap();
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}

pub(crate) fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes every reference bundle into `dir`, one subdirectory each.
/// The class: one client's records reaching another client's decisions
/// through a shared server. Two clients with tokens of their own send
/// records that claim the same `platform.id`, one request at a time, in
/// turn, singly and in batches, to a policy that carries a byte of every
/// record it sees into its next answer (`exfiltrate.wat`): each token is a
/// tenant of its own, so no decision ever carries the other client's byte,
/// while each client's own bytes do carry (the policy was running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_tokens_of_their_own_never_share_a_policy_instance() {
    let dir = scratch_dir("serve-tenants");
    let bundle = dir.join("policies").join("fixture");
    std::fs::create_dir_all(&bundle).unwrap();
    let manifest = "name = \"fixture\"\nversion = \"1.0.0\"\nregulator = \"nobody\"\narticles = []\n";
    std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
    let wasm = wat::parse_str(crate::with_schema(include_str!("../fixtures/exfiltrate.wat"))).unwrap();
    std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm).unwrap();
    std::fs::write(dir.join("tokens"), "client-a-token\nclient-b-token\n").unwrap();
    set_mode(&dir.join("tokens"), 0o600);
    let record = |id: &str| {
        format!(
            r#"{{"id":"{id}","platform":{{"id":"shared"}},"action":"use","data":{{"categories":["contact"]}},"purpose":"service"}}"#
        )
    };
    // The bytes a decision carries (`limit_retention` days), of every decision in `body`.
    let carried = |body: &str| -> Vec<u64> {
        body.lines()
            .flat_map(|line| json(line)["obligations"].as_array().cloned().unwrap_or_default())
            .filter(|o| o["kind"] == "limit_retention")
            .filter_map(|o| o["days"].as_u64())
            .collect()
    };
    // A random recheck may quarantine the policy early (about one record
    // in 4,096 is rechecked), leaving too little carried to show the
    // policy ran: then a new server, at most three.
    for _attempt in 0..3 {
        let server = Server::start(&[
            "--policies",
            dir.join("policies").to_str().unwrap(),
            "--allow-unsigned",
            "--token-file",
            dir.join("tokens").to_str().unwrap(),
        ]);
        let (mut own, mut decided) = (0, 0);
        for round in 0..40 {
            for (token, prefix, other) in [("client-a-token", 'A', b'B'), ("client-b-token", 'B', b'A')] {
                let body = if round % 2 == 0 {
                    record(&format!("{prefix}{round}"))
                } else {
                    (0..3).map(|n| record(&format!("{prefix}{round}-{n}")) + "\n").collect()
                };
                let path = if round % 2 == 0 { "/v1/decisions" } else { "/v1/decisions/batch" };
                let request = Request::post(server.url(path))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let reply = send(request).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                decided += reply.body.lines().count();
                let bytes = carried(&reply.body);
                assert!(!bytes.contains(&u64::from(other)), "{token} got the other client's byte: {}", reply.body);
                own += bytes.iter().filter(|&&b| b == u64::from(prefix as u8)).count();
            }
        }
        assert_eq!(decided, 2 * (20 + 20 * 3));
        // The policy ran and carried state within each client.
        if own > 40 {
            return;
        }
    }
    panic!("in three servers the policy never carried its own client's bytes: the test reached nothing");
}

fn write_reference_set(dir: &std::path::Path) {
    for (name, manifest, wasm) in flowgate_reference_set::bundles() {
        let bundle = dir.join(name);
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join(flowgate::MANIFEST_FILE), manifest).unwrap();
        std::fs::write(bundle.join(flowgate::MODULE_FILE), wasm).unwrap();
    }
}

fn lawful_basis_version(policies: &str) -> String {
    let policies = json(policies);
    let listed = policies["policies"].as_array().unwrap();
    let lawful = listed.iter().find(|p| p["name"] == "lawful-basis").unwrap();
    lawful["version"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_fails_no_request() {
    let dir = scratch_dir("serve-reload");
    write_reference_set(&dir);
    let server = Server::start(&["--policies", dir.to_str().unwrap(), "--allow-unsigned"]);
    assert_eq!(lawful_basis_version(&get(&server.url("/v1/policies")).await.body), "1.0.0");

    /// Each client stops after this many requests at most.
    const MOST: usize = 2_000;
    let reloaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (url, batch_url, reloaded) =
                (server.url("/v1/decisions"), server.url("/v1/decisions/batch"), Arc::clone(&reloaded));
            tokio::spawn(async move {
                let http = self::client();
                let mut after_reload = 0;
                for n in 0..MOST {
                    let (url, body) = if (client + n) % 4 == 0 {
                        (&batch_url, format!("{USE}\n{NO_BASIS}\n"))
                    } else {
                        (&url, if n % 2 == 0 { USE } else { NO_BASIS }.to_owned())
                    };
                    let reply = send_on(&http, Request::post(url).body(Full::new(Bytes::from(body))).unwrap()).await;
                    assert_eq!(reply.status, StatusCode::OK, "request {n} of client {client}: {}", reply.body);
                    for line in reply.body.lines() {
                        let effect = json(line)["effect"].as_str().unwrap().to_owned();
                        assert!(effect == "allow" || effect == "deny", "{line}");
                        assert!(!line.contains("policy-fault"), "{line}");
                    }
                    if reloaded.load(std::sync::atomic::Ordering::Relaxed) {
                        after_reload += 1;
                        if after_reload == 50 {
                            return n + 1;
                        }
                    }
                }
                MOST
            })
        })
        .collect();
    // Let the clients get going, then replace lawful-basis on disk (atomically, by rename).
    wait_for_metric_at_least(&server, r#"flowgate_http_requests_total{route="decisions",status="200"}"#, 100.0).await;
    let manifest =
        flowgate_reference_set::manifest("lawful-basis").unwrap().replace("version = \"1.0.0\"", "version = \"1.0.1\"");
    let staged = dir.join("lawful-basis").join("manifest.toml.new");
    std::fs::write(&staged, manifest).unwrap();
    std::fs::rename(&staged, dir.join("lawful-basis").join(flowgate::MANIFEST_FILE)).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while lawful_basis_version(&get(&server.url("/v1/policies")).await.body) != "1.0.1" {
        assert!(Instant::now() < deadline, "the new version never served: {}", server.stderr.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reloaded.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.expect("no client saw a failed request");
    }
    assert!(total < 8 * MOST, "every client saw the reload and went on");
    let text = get(&server.url("/metrics")).await.body;
    assert!(metric(&text, r#"flowgate_policy_events_total{event="activated"}"#) >= Some(1.0), "{text}");
    assert_eq!(metric(&text, r#"flowgate_policy_quarantined{policy="lawful-basis",version="1.0.1"}"#), Some(0.0));
    assert!(server.stderr.text().contains("activated `lawful-basis` 1.0.1"), "{}", server.stderr.text());
    let failed: f64 = text
        .lines()
        .filter(|line| line.starts_with("flowgate_http_requests_total") && !line.contains("status=\"200\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failed, 0.0, "{text}");
}

pub(crate) async fn wait_for_metric_at_least(server: &Server, name: &str, value: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = get(&server.url("/metrics")).await.body;
        if metric(&text, name).is_some_and(|now| now >= value) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {value}: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight() {
    let server = Server::start(&[]);
    let mut in_flight = partial_post(&server, "/v1/decisions/batch", USE.len(), &USE.as_bytes()[..7]).await;
    wait_for_metric(&server, "flowgate_requests_in_flight", 1.0).await;
    let address = server.address;
    let stopping = std::thread::spawn(move || server.stop());
    // It stops accepting...
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and still answers the request it had.
    in_flight.write_all(&USE.as_bytes()[7..]).await.unwrap();
    let answer = read_all(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":"a","effect":"allow""#), "{answer}");
    let (status, stderr) = stopping.join().unwrap();
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.ends_with("flowgate: stopped\n"), "{stderr}");
    assert!(!stderr.contains("timeout"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_decisions_leave_receipts_and_shutdown_signs_them() {
    let dir = scratch_dir("serve-receipts");
    let (keys, log) = (dir.join("keys"), dir.join("log"));
    assert_eq!(flowgate(&["key", "new", "platform", "--out", keys.to_str().unwrap()], b"").status, 0);
    let secret = keys.join("platform.key");
    let server = Server::start(&["--log", log.to_str().unwrap(), "--log-key", secret.to_str().unwrap()]);
    let single = post(&server.url("/v1/decisions"), USE).await;
    assert_eq!(single.status, StatusCode::OK, "{}", single.body);
    let batch: String = flowgate_reference_set::sample::flows(77, 50).iter().map(|f| f.to_json() + "\n").collect();
    let answered = post(&server.url("/v1/decisions/batch"), batch).await;
    assert_eq!((answered.status, answered.body.lines().count()), (StatusCode::OK, 50), "{}", answered.body);
    let (status, stderr) = server.stop();
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("decision log closed at tree size 52"), "{stderr}");
    let public = flowgate::PublicKey::read(&keys.join("platform.pub")).unwrap();
    let verified = flowgate::Audit::open(&log).unwrap().verify(&public, &[]).unwrap();
    assert_eq!((verified.receipts, verified.broken.clone(), verified.open), (51, None, false), "{verified:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_is_asked_for_in_the_query_and_is_what_check_explain_prints() {
    let server = shared();
    let explained = |input: &str| flowgate(&["check", "--explain", "-"], input.as_bytes()).stdout;
    for query in ["?explain", "?explain=true", "?explain=1"] {
        let single = post(&server.url(&format!("/v1/decisions{query}")), USE).await;
        assert_eq!(single.status, StatusCode::OK, "{}", single.body);
        assert_eq!(single.body, explained(USE));
        let verdicts = json(&single.body)["explain"].as_array().unwrap().len();
        assert_eq!(verdicts, crate::reference_host().policies().len(), "every loaded policy's verdict");
    }
    let input: String =
        flowgate_reference_set::sample::flows(21, 700).iter().map(|flow| flow.to_json() + "\n").collect();
    let batch = post(&server.url("/v1/decisions/batch?explain=true"), input.clone()).await;
    assert_eq!(batch.status, StatusCode::OK);
    assert!(batch.body == explained(&input), "a batch explained, in several chunks, is what check --explain prints");
    let plain = post(&server.url("/v1/decisions?explain=false"), USE).await;
    assert_eq!(plain.body, check(USE).0);
    for (query, expected) in
        [("?explain=maybe", "`explain` is `true` or `false`"), ("?colour=blue", "unknown query parameter `colour`")]
    {
        let refused = post(&server.url(&format!("/v1/decisions/batch{query}")), USE).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(json(&refused.body)["error"].as_str().unwrap().contains(expected), "{}", refused.body);
    }
}

/// Runs `flowgate serve ARGS` expecting it to refuse to start; if it starts
/// after all, it is stopped (status 0, and whatever it said).
fn refused(args: &[&str]) -> crate::CliRun {
    let argv: Vec<String> =
        ["flowgate", "serve", "--listen", "127.0.0.1:0"].iter().chain(args).map(|s| s.to_string()).collect();
    let cli = flowgate_cli::Cli::try_parse_from(&argv).unwrap();
    let (stop, stderr) = (Stop::new(), Stderr::default());
    let thread = {
        let (stop, stderr) = (stop.clone(), stderr.clone());
        std::thread::spawn(move || flowgate_cli::run_until(cli, &b""[..], std::io::sink(), stderr, false, stop))
    };
    stderr.wait_for("listening on ", &thread);
    stop.trigger();
    let status = thread.join().unwrap();
    crate::CliRun { status, stdout: String::new(), stderr: stderr.text() }
}

/// Kubernetes' way of delivering a Secret or ConfigMap file: `dir/NAME ->
/// ..data/NAME`, `..data -> ..VERSION`, a new version swapped in atomically.
fn kubernetes_swap(dir: &std::path::Path, version: &str, name: &str, text: &str, mode: u32) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).unwrap();
    std::fs::write(versioned.join(name), text).unwrap();
    set_mode(&versioned.join(name), mode);
    let staged = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(format!("..{version}"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
    if std::fs::symlink_metadata(dir.join(name)).is_err() {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_a_secret_followed_through_links() {
    let dir = scratch_dir("serve-token-file");
    let plain = dir.join("tokens");
    std::fs::write(&plain, "token-a\n").unwrap();
    // Others may read it: refused at start, naming the file, its mode and the fix.
    for (mode, shown) in [(0o644, "644"), (0o640, "640"), (0o604, "604")] {
        set_mode(&plain, mode);
        let run = refused(&["--token-file", plain.to_str().unwrap()]);
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert!(run.stderr.contains(&format!("has mode {shown}")), "{}", run.stderr);
        assert!(run.stderr.contains(&format!("run `chmod 600 {}`", plain.display())), "{}", run.stderr);
    }
    // A link to something that is not a regular file, or to nothing.
    let link = dir.join("link");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let run = refused(&["--token-file", link.to_str().unwrap()]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);

    // Mounted as Kubernetes mounts a Secret: followed, and swaps applied.
    let mounted = dir.join("secret");
    kubernetes_swap(&mounted, "1", "tokens", "token-a\ntoken-b\n", 0o600);
    let server = Server::start(&["--token-file", mounted.join("tokens").to_str().unwrap()]);
    let with = |token: &'static str| {
        let url = server.url("/v1/policies");
        async move {
            let request = Request::get(url).header("authorization", format!("Bearer {token}"));
            send(request.body(Full::default()).unwrap()).await.status
        }
    };
    assert_eq!(with("token-a").await, StatusCode::OK);
    // Token a revoked, token c added.
    kubernetes_swap(&mounted, "2", "tokens", "token-b\ntoken-c\n", 0o400);
    let deadline = Instant::now() + PATIENCE;
    while with("token-a").await != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "the revoked token still admitted: {}", server.stderr.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((with("token-b").await, with("token-c").await), (StatusCode::OK, StatusCode::OK));
    assert!(server.stderr.text().contains("changed: 2 tokens in force"), "{}", server.stderr.text());
    // A swap to a file others can read is refused, and the tokens in force stay.
    kubernetes_swap(&mounted, "3", "tokens", "token-a\n", 0o644);
    let said = server.stderr.wait_for("the tokens in force stay", server.thread.as_ref().unwrap());
    assert!(said.contains("has mode 644"), "{said}");
    assert_eq!((with("token-a").await, with("token-c").await), (StatusCode::UNAUTHORIZED, StatusCode::OK));
}
