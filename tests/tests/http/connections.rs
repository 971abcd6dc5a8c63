//! Connection bounds of both servers (hyper 1 under warp 0.4): slow heads,
//! silent and idle keep-alive connections are cut off, the number of open
//! connections is capped, shutdown does not wait for idle connections, and
//! the answers hyper writes itself (400, 414, 431) carry the JSON error body.

use std::time::Duration;

use faas_server::app::{self, ConnectionLimits, RunningServer};
use faas_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang guard for "the server closes the connection" / "shutdown finishes"
/// (not a timing assertion: every bound under test is far shorter, or, for
/// shutdown, far longer: the grace period is 10 minutes).
const HANG_GUARD: Duration = Duration::from_secs(20);

const KINDS: [&str; 2] = ["dispatcher", "worker"];

async fn spawn_with(kind: &str, data: &tempfile::TempDir, extra: &[(&str, &str)]) -> RunningServer {
    let mut vars = vec![
        ("LOWCODE_FAAS_WORKER_LISTEN", "127.0.0.1:0"),
        ("LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "300"),
        ("LOWCODE_FAAS_IDLE_TIMEOUT_MS", "300"),
    ];
    vars.extend_from_slice(extra);
    let settings = Settings::from_vars(faas_tests::test_vars(data.path(), &vars)).unwrap();
    match kind {
        "dispatcher" => app::spawn(settings).await.unwrap(),
        _ => faas_worker::spawn(settings).await.unwrap(),
    }
}

async fn spawn(kind: &str, data: &tempfile::TempDir) -> RunningServer {
    spawn_with(kind, data, &[]).await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one answer (head + `content-length` body); returns head and body.
async fn read_answer(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + length {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed mid-answer");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return (head, body);
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before an answer");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(HANG_GUARD, read).await.expect("an answer")
}

/// Asserts `answer` is `status` with the JSON error body of `code`.
fn assert_json_error(answer: &str, status: u16, code: &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: application/json"),
        "{answer}"
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(json["code"], code, "{answer}");
    assert!(json["error"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
}

#[tokio::test]
async fn headers_sent_one_byte_at_a_time_are_cut_off_on_both_servers() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn(kind, &data).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // A head that would take the client far longer than the bound to send.
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
            "a".repeat(400)
        );
        let mut cut_off = false;
        for byte in head.as_bytes() {
            if stream.write_all(&[*byte]).await.is_err() {
                cut_off = true;
                break;
            }
            // Pacing of the slow client, not synchronisation.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut probe = [0u8; 1];
            if let Ok(read) = tokio::time::timeout(Duration::ZERO, stream.read(&mut probe)).await {
                if matches!(read, Ok(0) | Err(_)) {
                    cut_off = true;
                    break;
                }
            }
        }
        assert!(cut_off, "{kind}: a head trickling in past the bound is cut off");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_connection_that_says_nothing_is_closed_on_both_servers() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn(kind, &data).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let seen = read_to_close(&mut stream).await;
        assert_eq!(seen, "", "{kind}: closed without an answer");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_on_both_servers() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        // A head bound far beyond the hang guard: only the idle bound can close it.
        let server = spawn_with(kind, &data, &[("LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "600000")]).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The answer comes, then the idle connection is closed by the server.
        let seen = read_to_close(&mut stream).await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{kind}: {seen}");
        assert_eq!(seen.matches("HTTP/1.1").count(), 1, "{kind}: {seen}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn at_the_connection_cap_open_clients_are_served_and_a_new_one_waits_for_a_slot() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn_with(
            kind,
            &data,
            &[
                ("LOWCODE_FAAS_MAX_CONNECTIONS", "1"),
                ("LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "600000"),
                ("LOWCODE_FAAS_IDLE_TIMEOUT_MS", "600000"),
            ],
        )
        .await;
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut first = TcpStream::connect(server.addr).await.unwrap();
        first.write_all(request).await.unwrap();
        let (head, _) = read_answer(&mut first).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{kind}: {head}");
        // The second connection completes its TCP handshake in the backlog
        // but is not accepted while the first holds the only slot.
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        second.write_all(request).await.unwrap();
        // The established client keeps being served.
        first.write_all(request).await.unwrap();
        let (head, _) = read_answer(&mut first).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{kind}: {head}");
        let mut probe = [0u8; 1];
        assert!(
            second.try_read(&mut probe).is_err(),
            "{kind}: no answer to a connection beyond the cap"
        );
        // The slot frees when the first client leaves; the second is served.
        drop(first);
        let (head, _) = read_answer(&mut second).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{kind}: {head}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn_with(
            kind,
            &data,
            &[
                // Every bound far beyond the hang guard.
                ("LOWCODE_FAAS_SHUTDOWN_GRACE_MS", "600000"),
                ("LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "600000"),
                ("LOWCODE_FAAS_IDLE_TIMEOUT_MS", "600000"),
            ],
        )
        .await;
        // An idle keep-alive connection, a silent one and one mid-head.
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_answer(&mut idle).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{kind}: {head}");
        let _silent = TcpStream::connect(server.addr).await.unwrap();
        let mut partial = TcpStream::connect(server.addr).await.unwrap();
        partial.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        tokio::time::timeout(HANG_GUARD, server.shutdown())
            .await
            .unwrap_or_else(|_| panic!("{kind}: shutdown finishes with idle connections open"));
        assert_eq!(read_to_close(&mut idle).await, "", "{kind}");
    }
}

#[tokio::test]
async fn an_oversized_head_is_431_with_a_json_body() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn(kind, &data).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(ConnectionLimits::default().max_header_bytes + 1024)
        );
        // The server may close while we are still writing.
        let _ = stream.write_all(head.as_bytes()).await;
        // The head fits in the server's read buffer, so it reads all of it and
        // answers 431 before closing (no reset can hide the reply).
        let seen = read_to_close(&mut stream).await;
        assert_json_error(&seen, 431, "HEADERS_TOO_LARGE");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn too_many_headers_is_431_with_a_json_body() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn("dispatcher", &data).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let headers: String = (0..=ConnectionLimits::default().max_headers)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    assert_json_error(&read_to_close(&mut stream).await, 431, "HEADERS_TOO_LARGE");
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_request_is_400_with_a_json_body_on_both_servers() {
    for kind in KINDS {
        for raw in [
            "NOT A REQUEST\r\n\r\n".to_owned(),
            "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_owned(),
            "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(),
            "GET /he\u{1}lthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        ] {
            let data = tempfile::tempdir().unwrap();
            let server = spawn(kind, &data).await;
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream.write_all(raw.as_bytes()).await.unwrap();
            assert_json_error(&read_to_close(&mut stream).await, 400, "INVALID_REQUEST");
            server.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_uri_over_the_limit_is_414_with_a_json_body() {
    for kind in KINDS {
        let data = tempfile::tempdir().unwrap();
        let server = spawn(kind, &data).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let path = format!("/healthz?pad={}", "a".repeat(8 * 1024) /* docs/api.md: 8 KiB */);
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (head, body) = read_answer(&mut stream).await;
        assert_json_error(&format!("{head}\r\n\r\n{body}"), 414, "URI_TOO_LONG");
        // Answered by the server itself: the connection stays usable.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_answer(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{kind}: {head}");
        server.shutdown().await;
    }
}
