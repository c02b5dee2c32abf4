//! The memory one request holds is bounded by a small multiple of its
//! body, whatever the body's shape (the README's promise), measured on the
//! `flowgate serve` process itself: its peak resident memory (`VmHWM`,
//! reset before each request through `/proc/PID/clear_refs`) less what it
//! held before, for one request at a time (`--queue 1`).
//!
//! The shapes: blank lines, one-byte invalid lines, lines over the line
//! limit, the smallest valid records, full records, full records with
//! `explain`, and one record padded to the single endpoint's 1 MiB.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a request may hold: this many times its body...
const MULTIPLE: u64 = 3;
/// ...plus this (buffers, a few chunks of answer).
const CONSTANT: u64 = 8 << 20;

const SMALLEST: &str =
    r#"{"id":"","platform":{"id":""},"action":"use","data":{"categories":["contact"]},"purpose":"service"}"#;

struct Served {
    child: Child,
    address: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--queue", "1", "--workers", "1", "--max-body-bytes", "16777216"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowgate binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line}")).parse().unwrap();
    // Keep reading stderr, so the server never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Served { child, address }
}

/// A field of `/proc/PID/status`, in bytes.
fn status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|line| line.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Posts `body` on a connection of its own; the status line and how many bytes the answer had.
fn post(address: SocketAddr, path: &str, body: &[u8]) -> (String, usize) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let status = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
    (status, answer.len())
}

fn lines(line: &str, bytes: usize) -> Vec<u8> {
    let line = format!("{line}\n");
    line.repeat(bytes / line.len()).into_bytes()
}

#[test]
fn a_request_holds_at_most_a_small_multiple_of_its_body_whatever_its_shape() {
    let full: String = flowgate_reference_set::sample::flows(3, 60_000).iter().map(|f| f.to_json() + "\n").collect();
    let full_16 = full.as_bytes()[..full[..16 << 20].rfind('\n').unwrap() + 1].to_vec();
    let few = full.as_bytes()[..full[..64 << 10].rfind('\n').unwrap() + 1].to_vec();
    let mut padded = SMALLEST.as_bytes().to_vec();
    padded.resize(1 << 20, b' ');
    let shapes: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("blank lines, 2 MiB", "/v1/decisions/batch", vec![b'\n'; 2 << 20], "200"),
        ("blank lines, 16 MiB", "/v1/decisions/batch", vec![b'\n'; 16 << 20], "200"),
        ("one-byte invalid lines, 2 MiB", "/v1/decisions/batch", lines("x", 2 << 20), "400"),
        ("one-byte invalid lines, 16 MiB", "/v1/decisions/batch", lines("x", 16 << 20), "400"),
        ("lines over the line limit, 14 MiB", "/v1/decisions/batch", lines(&"x".repeat(2 << 20), 16 << 20), "400"),
        ("the smallest valid records, 16 MiB", "/v1/decisions/batch", lines(SMALLEST, 16 << 20), "200"),
        ("full records, 16 MiB", "/v1/decisions/batch", full_16.clone(), "200"),
        ("full records explained, 16 MiB", "/v1/decisions/batch?explain", full_16, "200"),
        ("one record padded to 1 MiB", "/v1/decisions", padded, "200"),
    ];
    let mut table = String::new();
    let mut worst = 0.0_f64;
    for (shape, path, body, expected) in &shapes {
        // A server of its own for each shape, warmed up with small requests
        // (instances made, buffers grown), so nothing another shape freed is reused.
        let served = start();
        let pid = served.child.id();
        post(served.address, "/v1/decisions/batch?explain", &few);
        post(served.address, "/v1/decisions/batch", &few);
        post(served.address, "/v1/decisions", SMALLEST.as_bytes());
        let before = status(pid, "VmRSS");
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("the peak can be reset");
        let (status_line, answered) = post(served.address, path, body);
        let peak = status(pid, "VmHWM");
        assert!(status_line.ends_with(expected), "{shape}: {status_line}");
        let grew = peak.saturating_sub(before);
        let bound = MULTIPLE * body.len() as u64 + CONSTANT;
        let multiple = grew as f64 / body.len() as f64;
        worst = worst.max(multiple);
        table += &format!(
            "| {shape} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {multiple:.2} |\n",
            body.len() as f64 / 1048576.0,
            answered as f64 / 1048576.0,
            grew as f64 / 1048576.0
        );
        assert!(grew <= bound, "{shape}: grew {grew} bytes for a body of {}, above {bound}\n{table}", body.len());
    }
    println!("| shape | body | answer | peak growth | growth / body |\n|---|---|---|---|---|\n{table}");
    println!("worst: {worst:.2} times the body");
}
