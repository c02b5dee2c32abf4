//! `flowgate serve` as a process: SIGTERM stops accepting, lets the request
//! in flight finish, closes the host, and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USE: &str = r#"{"id":"a","platform":{"id":"p"},"action":"use","data":{"categories":["contact"]},"purpose":"service","lawful_basis":"contract"}"#;

/// One plain HTTP/1.1 exchange; the whole answer.
fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowgate binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address: SocketAddr =
        line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line}")).parse().unwrap();

    // A request whose body is still arriving.
    let mut in_flight = TcpStream::connect(address).unwrap();
    in_flight.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head =
        format!("POST /v1/decisions HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", USE.len());
    in_flight.write_all(head.as_bytes()).unwrap();
    in_flight.write_all(&USE.as_bytes()[..9]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = "GET /metrics HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";
    while !exchange(address, metrics).contains("\nflowgate_requests_in_flight 1\n") {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }

    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a child's pid and a valid signal number touches no memory.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    while TcpStream::connect(address).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    in_flight.write_all(&USE.as_bytes()[9..]).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":"a","effect":"allow""#), "{answer}");

    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.ends_with("flowgate: stopped\n"), "{rest}");
}
