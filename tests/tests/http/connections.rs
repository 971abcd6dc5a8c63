//! Connection bounds of both servers (hyper 1 under warp 0.4): slow headers,
//! idle keep-alive connections and oversized heads are cut off.

use std::time::Duration;

use faas_server::app::{self, ConnectionLimits, RunningServer};
use faas_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang guard for "the server closes the connection" (not a timing assertion).
const HANG_GUARD: Duration = Duration::from_secs(20);

async fn spawn(kind: &str, data: &tempfile::TempDir) -> RunningServer {
    let mut settings = Settings::from_vars(faas_tests::test_vars(
        data.path(),
        &[("LOWCODE_FAAS_WORKER_LISTEN", "127.0.0.1:0")],
    ))
    .unwrap();
    settings.connection_limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    match kind {
        "dispatcher" => app::spawn(settings).await.unwrap(),
        _ => faas_worker::spawn(settings).await.unwrap(),
    }
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

#[tokio::test]
async fn headers_sent_one_byte_at_a_time_are_cut_off_on_both_servers() {
    for kind in ["dispatcher", "worker"] {
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
async fn an_idle_keep_alive_connection_is_closed() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn("dispatcher", &data).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The reply comes, then the idle connection is closed by the server.
    let seen = read_to_close(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = spawn("dispatcher", &data).await;
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
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
    server.shutdown().await;
}
