//! `flowgate serve` against peers that hold connections without progress.
//!
//! The class, every member of it: silence before the first byte, half a
//! TLS handshake, part of the HTTP/2 preface, part of a request head, a
//! HEADERS frame without END_HEADERS, a body that stalls, an idle
//! keep-alive, an HTTP/2 connection with no stream (pinging, which is not
//! progress), an HTTP/2 stream whose body never ends, and a client that
//! never reads its answer, over HTTP/1.1 and HTTP/2. Each is closed within
//! the read timeout (twice it where a 408 comes first) plus slack, and
//! gives its slot back; with every slot taken by them, newcomers are
//! served by reclaiming the slot of the one making the least progress; and
//! with peers that reconnect as fast as they are cut, legitimate clients
//! still get at least 90 % of their requests answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scratch_dir;
use crate::serve::{Server, USE, get, metric};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

const SETTINGS: u8 = 4;
const HEADERS: u8 = 1;
const PING: u8 = 6;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

/// The HPACK block of a request (`:method`, `:scheme` indexed; `:path`,
/// `:authority` literal), enough for the server to start a stream.
fn request_block(post: bool, path: &str) -> Vec<u8> {
    let mut block = vec![if post { 0x83 } else { 0x82 }, 0x86, 0x44, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x41, 1, b't']);
    block
}

/// How a peer holds its connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hold {
    /// Connects and says nothing.
    Silence,
    /// Sends the start of a request head, then a byte at a time, never ending it.
    PartialHead,
    /// Sends 16 bytes of the HTTP/2 preface.
    PartialPreface,
    /// A whole preface, then a HEADERS frame without END_HEADERS.
    UnfinishedHeaders,
    /// A whole head, then its body a byte at a time, never all of it.
    StalledBody,
    /// One whole request and its answer, then nothing.
    IdleKeepAlive,
    /// An HTTP/2 connection with no stream, pinging (pings are not progress).
    NoStreams,
    /// An HTTP/2 request whose body never ends, on an endpoint that ignores it.
    EndlessStream,
}

const HOLDS: [Hold; 8] = [
    Hold::Silence,
    Hold::PartialHead,
    Hold::PartialPreface,
    Hold::UnfinishedHeaders,
    Hold::StalledBody,
    Hold::IdleKeepAlive,
    Hold::NoStreams,
    Hold::EndlessStream,
];

impl Hold {
    /// What it sends first.
    fn opening(self) -> Vec<u8> {
        match self {
            Hold::Silence => Vec::new(),
            Hold::PartialHead => b"POST /v1/decisions HTTP/1.1\r\nhost: t\r\nx-pad: ".to_vec(),
            Hold::PartialPreface => PREFACE[..16].to_vec(),
            Hold::UnfinishedHeaders => {
                let mut bytes = PREFACE.to_vec();
                bytes.extend(frame(SETTINGS, 0, 0, &[]));
                bytes.extend(frame(HEADERS, END_STREAM, 1, &request_block(false, "/healthz")));
                bytes
            }
            Hold::StalledBody => {
                format!("POST /v1/decisions HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\n{}", &USE[..10])
                    .into_bytes()
            }
            Hold::IdleKeepAlive => b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n".to_vec(),
            Hold::NoStreams => [PREFACE, &frame(SETTINGS, 0, 0, &[])].concat(),
            Hold::EndlessStream => {
                let mut bytes = PREFACE.to_vec();
                bytes.extend(frame(SETTINGS, 0, 0, &[]));
                bytes.extend(frame(HEADERS, END_HEADERS, 1, &request_block(true, "/healthz")));
                bytes
            }
        }
    }

    /// What it sends every 100 ms after, if anything.
    fn trickle(self) -> Option<Vec<u8>> {
        match self {
            Hold::PartialHead => Some(b"a".to_vec()),
            Hold::StalledBody => Some(b" ".to_vec()),
            Hold::NoStreams => Some(frame(PING, 0, 0, &[0; 8])),
            Hold::EndlessStream => Some(frame(0, 0, 1, b" ")),
            _ => None,
        }
    }
}

/// Plays `hold` on a new connection until the server closes it (or `stop`);
/// how long the connection lasted, if the server closed it.
async fn play(address: SocketAddr, hold: Hold, stop: &AtomicBool) -> Option<Duration> {
    let stream = TcpStream::connect(address).await.ok()?;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    if writer.write_all(&hold.opening()).await.is_err() {
        return Some(started.elapsed());
    }
    let mut buffer = vec![0; 64 << 10];
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                Ok(_) => {}
            },
            _ = ticks.tick() => {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                if let Some(bytes) = hold.trickle()
                    && writer.write_all(&bytes).await.is_err()
                {
                    return Some(started.elapsed());
                }
            }
        }
    }
}

async fn metrics(server: &Server) -> String {
    get(&server.url("/metrics")).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_holding_a_connection_without_progress_is_closed_in_time() {
    let timeout = Duration::from_millis(1000);
    let server = Server::start(&["--read-timeout-ms", "1000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let plays: Vec<_> = HOLDS
        .iter()
        .map(|&hold| {
            let (address, stop) = (server.address, Arc::clone(&stop));
            tokio::spawn(async move { (hold, play(address, hold, &stop).await) })
        })
        .collect();
    for play in plays {
        let (hold, lasted) = play.await.unwrap();
        let lasted = lasted.unwrap_or_else(|| panic!("{hold:?}: never closed"));
        // A body that stalls is answered 408 at the timeout; an endless
        // stream's answer is taken, then its connection idles a timeout more.
        let allowed = match hold {
            Hold::StalledBody | Hold::EndlessStream => 2 * timeout,
            _ => timeout,
        };
        assert!(lasted >= timeout / 2, "{hold:?}: closed after {lasted:?}, before the timeout");
        assert!(lasted <= allowed + Duration::from_secs(4), "{hold:?}: open for {lasted:?}");
    }
    let text = metrics(&server).await;
    let stalled = metric(&text, r#"flowgate_connections_closed_total{reason="stalled"}"#).unwrap();
    assert!(stalled >= 6.0, "{text}");
    assert!(metric(&text, "flowgate_connections_open").unwrap() <= 2.0, "the slots are given back: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_tls_handshake_is_closed_in_time() {
    let dir = scratch_dir("serve-tls-partial");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    crate::serve::set_mode(&dir.join("key.pem"), 0o600);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let server =
        Server::start(&["--tls-cert", &path("cert.pem"), "--tls-key", &path("key.pem"), "--read-timeout-ms", "1000"]);
    // The first bytes of a ClientHello record, then nothing; and silence.
    for opening in [&b"\x16\x03\x01\x02"[..], b""] {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        let started = Instant::now();
        stream.write_all(opening).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await.expect("closed");
        let lasted = started.elapsed();
        assert!(lasted >= Duration::from_millis(500) && lasted <= Duration::from_secs(5), "{opening:?}: {lasted:?}");
    }
}

/// A request whose answer is many times the socket buffers: a batch, explained.
fn big_batch() -> String {
    flowgate_reference_set::sample::flows(5, 4000).iter().map(|flow| flow.to_json() + "\n").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answer_is_closed_and_frees_its_place() {
    let server = Server::start(&["--read-timeout-ms", "1000"]);
    let body = big_batch();

    // HTTP/1.1, with a small receive buffer: the server's writes block.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.address).await.unwrap();
    let head =
        format!("POST /v1/decisions/batch?explain HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();

    // HTTP/2: the answer's head is read, its body never (no window is given back).
    let h2 = TcpStream::connect(server.address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2)).await.unwrap();
    let h2_connection = tokio::spawn(connection);
    let request =
        Request::post(server.url("/v1/decisions/batch?explain")).body(Full::new(Bytes::from(body.clone()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);

    // Both are cut within the timeout of their last piece taken, and their places freed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(&server).await;
        let stalled = metric(&text, r#"flowgate_connections_closed_total{reason="stalled"}"#).unwrap();
        if stalled >= 2.0 && metric(&text, "flowgate_requests_in_flight") == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), h2_connection).await.expect("the h2 connection ends");
    drop(response);
    // What the HTTP/1.1 client gets when it reads at last: a part, cut short.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.expect("closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..text.len().min(200)]);
    assert!(text.lines().filter(|line| line.starts_with("{\"id\"")).count() < 4000, "the answer was cut short");
}

/// Sends one decision request on a connection of its own; whether it was answered 200 within `patience`.
async fn legitimate(address: SocketAddr, patience: Duration) -> bool {
    let request = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let head = format!(
            "POST /v1/decisions HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            USE.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(USE.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(patience, request).await.ok().flatten().unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_slot_held_a_newcomer_takes_the_least_progressing_one() {
    // A read timeout far longer than the test: only reclaiming can serve newcomers.
    let server = Server::start(&["--max-connections", "8", "--read-timeout-ms", "60000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let holders: Vec<_> = HOLDS
        .iter()
        .map(|&hold| {
            let (address, stop) = (server.address, Arc::clone(&stop));
            tokio::spawn(async move { play(address, hold, &stop).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for n in 0..10 {
        assert!(legitimate(server.address, Duration::from_secs(10)).await, "request {n} after {:?}", started.elapsed());
    }
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    stop.store(true, Ordering::Relaxed);
    let mut closed = 0;
    for holder in holders {
        closed += usize::from(holder.await.unwrap().is_some());
    }
    assert!(closed >= 1, "a holder gave its slot up");
    let text = metrics(&server).await;
    assert!(metric(&text, r#"flowgate_connections_closed_total{reason="reclaimed"}"#).unwrap() >= 1.0, "{text}");
    assert_eq!(metric(&text, r#"flowgate_connections_closed_total{reason="stalled"}"#), Some(0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_peers_that_reconnect_do_not_starve_legitimate_clients() {
    let server = Server::start(&["--max-connections", "16", "--read-timeout-ms", "1000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let cuts = Arc::new(AtomicUsize::new(0));
    // 16 peers, each holding its slot as long as it can and reconnecting at
    // once when cut. (Not a stalled body: its own 408 cuts it, and the
    // test is of what cuts the others.)
    let holds: Vec<Hold> = HOLDS.into_iter().filter(|&hold| hold != Hold::StalledBody).collect();
    let tricklers: Vec<_> = (0..16)
        .map(|n| {
            let (address, stop, cuts) = (server.address, Arc::clone(&stop), Arc::clone(&cuts));
            let hold = holds[n % holds.len()];
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if play(address, hold, &stop).await.is_some() {
                        cuts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Four clients at once, ten requests each, a new connection each.
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (address, answered) = (server.address, Arc::clone(&answered));
            tokio::spawn(async move {
                for _ in 0..10 {
                    if legitimate(address, Duration::from_secs(5)).await {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for trickler in tricklers {
        trickler.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    let cuts = cuts.load(Ordering::Relaxed);
    println!("slowloris: {answered} of 40 legitimate requests answered; tricklers cut {cuts} times");
    assert!(cuts >= 16, "the tricklers held their slots and were cut: {cuts}");
    assert!(answered >= 36, "{answered} of 40 legitimate requests answered");
}
