//! Function-log sinks against loopback receivers (Loki, Elasticsearch,
//! webhook): wire format, auth, counting, the flush at shutdown; and the
//! outbound proxy of the worker hop, which the source fetcher never uses.

use std::net::SocketAddr;
use std::time::Duration;

use faas_tests::{spawn_app, spawn_app_on, spawn_worker, storage_vars, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::dispatcher::{invoke, HELLO};

/// Writes one line per console method (5 entries a run).
const LOGGER: &str = r#"export async function handler(input) {
  console.log("log", input.who);
  console.info("info");
  console.warn("warn");
  console.error("error");
  console.debug("debug");
  return { ok: true };
}"#;

/// One request as a receiver saw it.
#[derive(Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one request (head + Content-Length body) from `sock`, keeping what
/// follows it in `buf`; `None` at the end of the connection.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let line = lines.next().unwrap_or_default().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some(Seen { line, headers, body });
            }
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A loopback receiver answering every request with `status` and `body`
/// (keep-alive), recording what it got.
async fn receiver(status: u16, body: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(seen) = read_request(&mut sock, &mut buf).await {
                    let _ = tx.send(seen);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A forwarding HTTP proxy for `http://` URLs: records each request line it
/// is asked for (absolute form), sends the request on to its target with
/// `connection: close` and copies the reply back.
async fn forwarding_proxy() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if let Some(seen) = read_request(&mut client, &mut buf).await {
                    let _ = tx.send(seen.line.clone());
                    let mut parts = seen.line.splitn(3, ' ');
                    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
                    let rest = target.strip_prefix("http://").expect("absolute-form request");
                    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                    let path = if path.is_empty() { "/" } else { path };
                    let mut upstream = TcpStream::connect(host).await.unwrap();
                    let mut head = format!("{method} {path} HTTP/1.1\r\n");
                    for (n, v) in &seen.headers {
                        if !n.eq_ignore_ascii_case("connection") && !n.eq_ignore_ascii_case("proxy-connection") {
                            head.push_str(&format!("{n}: {v}\r\n"));
                        }
                    }
                    head.push_str("connection: close\r\n\r\n");
                    upstream.write_all(head.as_bytes()).await.unwrap();
                    upstream.write_all(&seen.body).await.unwrap();
                    let mut reply = Vec::new();
                    let _ = upstream.read_to_end(&mut reply).await;
                    // The client's connection ends with the reply (no keep-alive here).
                    let _ = client.write_all(&reply).await;
                }
            });
        }
    });
    (addr, rx)
}

/// Every request the receiver has got so far.
fn drain(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Ok(seen) = rx.try_recv() {
        out.push(seen);
    }
    out
}

/// The value of a metrics line, polled until it reaches `want` (bounded).
async fn metric_reaches(app: &TestApp, series: &str, want: u64) {
    let mut last = String::new();
    for _ in 0..300 {
        let text = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix(series)) {
            if v.trim().parse::<u64>().unwrap() >= want {
                return;
            }
            last = v.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} stayed at {last:?}, expected {want}");
}

async fn run_logger(app: &TestApp) {
    app.create_function("", "logger", LOGGER, json!({})).await;
    let r = invoke(app, "/functions/logger/invoke", json!({"input": {"who": "Ada"}})).await;
    assert_eq!(r["status"], "success", "{r}");
}

#[tokio::test]
async fn loki_entries_logged_just_before_shutdown_arrive() {
    let (addr, mut seen) = receiver(204, "").await;
    let url = format!("http://{addr}");
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "loki"),
        ("LOWCODE_FAAS_LOG_LOKI_URL", &url),
        // A partial batch would wait ten minutes: only the shutdown flush sends it.
        ("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "600000"),
    ])
    .await;
    run_logger(&app).await;
    assert!(drain(&mut seen).is_empty(), "still queued before the shutdown");
    app.stop().await;
    let pushes = drain(&mut seen);
    let mut messages: Vec<String> = Vec::new();
    for push in &pushes {
        assert_eq!(push.line, "POST /loki/api/v1/push HTTP/1.1");
        let body: Value = serde_json::from_slice(&push.body).unwrap();
        for stream in body["streams"].as_array().unwrap() {
            assert_eq!(stream["stream"]["job"], "lowcode-faas-function");
            for value in stream["values"].as_array().unwrap() {
                let line: Value = serde_json::from_str(value[1].as_str().unwrap()).unwrap();
                messages.push(line["message"].as_str().unwrap().to_owned());
            }
        }
    }
    messages.sort();
    assert_eq!(messages, ["debug", "error", "info", "log Ada", "warn"]);
}

#[tokio::test]
async fn elasticsearch_sink_bulk_indexes_go_documents_with_basic_auth() {
    let (addr, mut seen) = receiver(200, r#"{"took":1,"errors":false,"items":[]}"#).await;
    let url = format!("http://{addr}");
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "elasticsearch"),
        ("LOWCODE_FAAS_LOG_ES_URL", &url),
        ("LOWCODE_FAAS_LOG_ES_INDEX", "faas-fn-logs"),
        ("LOWCODE_FAAS_LOG_ES_USER", "elastic"),
        ("LOWCODE_FAAS_LOG_ES_PASSWORD", "changeme"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "600000"),
    ])
    .await;
    run_logger(&app).await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains(r#"lowcode_faas_function_log_entries_total{result="sent",sink="memory"} 5"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"lowcode_faas_function_log_dropped_total{reason="queue_bytes",sink="elasticsearch"} 0"#));
    app.stop().await;
    let bulks = drain(&mut seen);
    assert_eq!(bulks.len(), 1, "one bulk request for the run's 5 entries");
    let bulk = &bulks[0];
    assert_eq!(bulk.line, "POST /_bulk HTTP/1.1");
    assert_eq!(bulk.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(bulk.header("authorization"), Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="));
    let lines: Vec<Value> = bulk.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10);
    for pair in lines.chunks(2) {
        assert_eq!(pair[0], json!({"index": {"_index": "faas-fn-logs"}}));
        let doc = &pair[1];
        assert_eq!(doc["function_name"], "logger");
        assert_eq!(doc["deployment_version"], 1);
        assert!(doc.get("collection_path").is_none(), "root: left out as Go did");
        for key in ["run_id", "execution_id", "deployment_id", "ts", "level", "message"] {
            assert!(doc[key].is_string(), "{key} in {doc}");
        }
    }
}

#[tokio::test]
async fn webhook_posts_each_entry_with_its_header_and_counts_refusals() {
    let (addr, mut seen) = receiver(500, "{}").await;
    let url = format!("http://{addr}/ingest");
    let app = spawn_app(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "webhook"),
        ("LOWCODE_FAAS_LOG_HTTP_URL", &url),
        ("LOWCODE_FAAS_LOG_HTTP_HEADER", "X-Ingest-Key: abc123"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "20"),
    ])
    .await;
    run_logger(&app).await;
    metric_reaches(
        &app,
        r#"lowcode_faas_function_log_entries_total{result="failed",sink="http"}"#,
        5,
    )
    .await;
    let posts = drain(&mut seen);
    assert_eq!(posts.len(), 5, "one POST per entry");
    for post in &posts {
        assert_eq!(post.line, "POST /ingest HTTP/1.1");
        assert_eq!(post.header("x-ingest-key"), Some("abc123"));
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(body["entry"]["function_name"], "logger");
    }
    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains(r#"lowcode_faas_function_log_entries_total{result="sent",sink="http"} 0"#));
    app.stop().await;
}

#[tokio::test]
async fn the_worker_hop_goes_through_http_proxy_and_the_fetcher_never_does() {
    let (proxy, mut asked) = forwarding_proxy().await;
    let proxy_url = format!("http://{proxy}");
    let data = tempfile::tempdir().unwrap();
    let storage = storage_vars().await;
    let mut vars: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (worker_url, _worker) = spawn_worker(data.path(), &vars).await;
    vars.extend([
        ("LOWCODE_FAAS_WORKER_URL", worker_url.as_str()),
        ("HTTP_PROXY", proxy_url.as_str()),
        ("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true"),
    ]);
    let app = spawn_app_on(data, &vars).await;

    // A source server on loopback: the fetcher reaches it directly.
    let source = faas_tests::canned_server(format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HELLO}",
        HELLO.len()
    ))
    .await;
    let r = app
        .post(
            "/functions",
            json!({"name": "hello", "source_url": format!("http://{source}/hello.mjs")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before: Vec<String> = std::iter::from_fn(|| asked.try_recv().ok()).collect();
    assert!(
        before
            .iter()
            .all(|l| l.contains(worker_url.trim_start_matches("http://"))),
        "the source fetch never went through the proxy: {before:?}"
    );

    let res = invoke(&app, "/functions/hello/invoke", json!({"input": {"name": "proxy"}})).await;
    assert_eq!(res["status"], "success", "{res}");
    let lines: Vec<String> = std::iter::from_fn(|| asked.try_recv().ok()).collect();
    assert!(
        lines.contains(&format!("POST {worker_url}/v1/run HTTP/1.1")),
        "the run went through the proxy: {lines:?}"
    );
    app.stop().await;
}
