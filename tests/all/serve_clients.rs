//! What ordinary HTTP clients see when `flowgate serve` answers before it
//! has read their body: bodies over the limit (413, declared by
//! `Content-Length` or sent chunked), and a request to no endpoint (404).
//! Python's `urllib` and `requests` send the whole body before reading
//! anything; curl asks `Expect: 100-continue` for large bodies; Java's
//! `HttpClient` sends as it reads. Each must read the answer, not a broken
//! pipe or a reset. A client whose runtime is not installed is skipped, and
//! says so.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::scratch_dir;
use crate::serve::Server;

/// The body limit of the server under test, and what clients send.
const LIMIT: usize = 1 << 20;

/// Runs `program` with `args`, within a minute; its stdout, or `None` if it is not installed.
fn run(program: &str, args: &[&str]) -> Option<String> {
    let mut child = match Command::new(program).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => panic!("{program}: {err}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} {args:?} took more than two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Some(format!("{stdout}{stderr}"))
}

const PYTHON: &str = r#"
import sys, urllib.request, urllib.error
url, path, how = sys.argv[1], sys.argv[2], sys.argv[3]
body = open(path, "rb").read()
if how == "chunked":
    data = (body[i:i + 65536] for i in range(0, len(body), 65536))
else:
    data = body
if how == "requests":
    import requests
    r = requests.post(url, data=body, headers={"content-type": "application/x-ndjson"}, timeout=60)
    print(r.status_code, r.text.strip())
elif how == "requests-chunked":
    import requests
    r = requests.post(url, data=(body[i:i + 65536] for i in range(0, len(body), 65536)), timeout=60)
    print(r.status_code, r.text.strip())
else:
    request = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            print(response.status, response.read().decode().strip())
    except urllib.error.HTTPError as error:
        print(error.code, error.read().decode().strip())
"#;

const JAVA: &str = r#"
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

public class Client {
    public static void main(String[] args) throws Exception {
        byte[] body = Files.readAllBytes(Path.of(args[1]));
        HttpRequest.BodyPublisher publisher = args[2].equals("chunked")
            ? HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(body))
            : HttpRequest.BodyPublishers.ofByteArray(body);
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0])).timeout(Duration.ofSeconds(60)).POST(publisher).build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode() + " " + response.body().trim());
    }
}
"#;

/// The status and body text each client printed, checked: `expected` status and words.
fn assert_answer(client: &str, printed: &str, expected: &str, words: &str) {
    assert!(printed.starts_with(expected), "{client}: {printed}");
    assert!(printed.contains(words), "{client}: {printed}");
}

#[test]
fn clients_that_send_before_they_read_still_read_413_and_404() {
    let server = Server::start(&["--max-body-bytes", &LIMIT.to_string()]);
    let dir = scratch_dir("serve-clients");
    let large = dir.join("large.jsonl");
    // Twice the limit, and four times: lines of valid records.
    let line = crate::serve::USE.to_owned() + "\n";
    let write = |path: &Path, bytes: usize| std::fs::write(path, line.repeat(bytes / line.len() + 1)).unwrap();
    write(&large, 2 * LIMIT);
    let larger = dir.join("larger.jsonl");
    write(&larger, 4 * LIMIT);
    std::fs::write(dir.join("client.py"), PYTHON).unwrap();
    std::fs::write(dir.join("Client.java"), JAVA).unwrap();
    let batch = server.url("/v1/decisions/batch");
    let single = server.url("/v1/decisions");
    let nowhere = server.url("/v1/nowhere");
    let too_large = "larger than the";
    let mut ran = Vec::new();

    let python = dir.join("client.py");
    let python = python.to_str().unwrap();
    for how in ["length", "chunked", "requests", "requests-chunked"] {
        for (url, body, status, words) in [
            (&batch, &large, "413", too_large),
            (&batch, &larger, "413", too_large),
            (&single, &large, "413", too_large),
            (&nowhere, &large, "404", "no such endpoint"),
        ] {
            let Some(printed) = run("python3", &[python, url, body.to_str().unwrap(), how]) else {
                println!("note: python3 is not installed: its clients were not tried");
                break;
            };
            if printed.contains("ModuleNotFoundError: No module named 'requests'") {
                println!("note: python's `requests` is not installed: it was not tried");
                break;
            }
            assert_answer(&format!("python {how} {url}"), &printed, status, words);
            ran.push(format!("python {how}"));
        }
    }

    let java = dir.join("Client.java");
    for how in ["length", "chunked"] {
        for (url, body, status, words) in
            [(&batch, &large, "413", too_large), (&nowhere, &large, "404", "no such endpoint")]
        {
            let Some(printed) = run("java", &[java.to_str().unwrap(), url, body.to_str().unwrap(), how]) else {
                println!("note: java is not installed: its HttpClient was not tried");
                break;
            };
            assert_answer(&format!("java {how} {url}"), &printed, status, words);
            ran.push(format!("java {how}"));
        }
    }

    for chunked in [false, true] {
        let at = format!("@{}", large.display());
        let mut args = vec!["-sS", "-w", "\n%{http_code}", "--data-binary", &at, &batch];
        if chunked {
            args.extend(["-H", "transfer-encoding: chunked"]);
        }
        let Some(printed) = run("curl", &args) else {
            println!("note: curl is not installed: it was not tried");
            break;
        };
        assert!(printed.trim_end().ends_with("413") && printed.contains(too_large), "curl {chunked}: {printed}");
        ran.push(format!("curl chunked={chunked}"));
    }
    println!("clients tried: {ran:?}");
    // The server answered each, and went on deciding.
    let run = run("curl", &["-sS", "--data-binary", crate::serve::USE, &single]);
    if let Some(printed) = run {
        assert!(printed.contains("\"effect\":\"allow\""), "{printed}");
    }
}
