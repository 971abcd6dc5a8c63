//! Helpers of the black-box suite: [`spawn_app`] starts the real dispatcher
//! (the same code the `faas-server` binary runs) on `127.0.0.1:0` over a
//! fresh temp data directory, and [`TestApp`] talks to it over HTTP.
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench_support;
pub mod proc_support;

use std::path::{Path, PathBuf};

use faas_server::app::{self, RunningServer};
use faas_server::Settings;
use serde_json::Value;

/// A running dispatcher and a client for it.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The data directory (removed on drop).
    pub data: tempfile::TempDir,
    server: Option<RunningServer>,
}

/// A reply: status, headers and the JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Parsed body.
    pub body: Value,
    /// Raw body.
    pub text: String,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Settings used by every test app; `extra` overrides them.
pub fn test_vars(data: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("LOWCODE_FAAS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LOWCODE_FAAS_RUNTIME".to_owned(), "process".to_owned()),
        ("LOWCODE_FAAS_DATA_DIR".to_owned(), data.display().to_string()),
        ("LOWCODE_FAAS_SHUTDOWN_GRACE_MS".to_owned(), "5000".to_owned()),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    vars
}

/// Starts a dispatcher on a fresh data dir.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    spawn_app_on(data, extra).await
}

/// Which storage the suite runs against: `FAAS_TESTS_STORAGE=db_s3` runs
/// every app on PostgreSQL + S3 (a fresh database and S3 prefix per app or
/// pair, from the `LOWCODE_FAAS_TEST_*` services of
/// `scripts/start-test-services.sh`); anything else, `files`.
pub fn db_s3_mode() -> bool {
    std::env::var("FAAS_TESTS_STORAGE").is_ok_and(|v| v == "db_s3")
}

fn service_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: run scripts/start-test-services.sh and source target/test-services.env"),
    }
}

/// Storage settings for one app or one dispatcher + worker pair: empty in
/// files mode (each app has its temp data dir); in db_s3 mode a fresh
/// database and S3 prefix.
pub async fn storage_vars() -> Vec<(String, String)> {
    if !db_s3_mode() {
        return Vec::new();
    }
    db_s3_vars().await
}

/// The settings of a fresh db_s3 storage (a new database and S3 prefix on
/// the `LOWCODE_FAAS_TEST_*` services) in every suite mode, for the tests
/// that are about db_s3 itself.
pub async fn db_s3_vars() -> Vec<(String, String)> {
    use sqlx::{Connection, Executor};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "faas_http_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let admin_dsn = service_var("LOWCODE_FAAS_TEST_POSTGRES_DSN");
    let mut admin = sqlx::PgConnection::connect(&admin_dsn)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to LOWCODE_FAAS_TEST_POSTGRES_DSN: {e}"));
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .unwrap();
    admin.close().await.ok();
    let base = admin_dsn
        .rsplit_once('/')
        .map_or(admin_dsn.as_str(), |(b, _)| b)
        .to_owned();
    vec![
        ("LOWCODE_FAAS_STORAGE".into(), "db_s3".into()),
        ("LOWCODE_FAAS_POSTGRES_DSN".into(), format!("{base}/{name}")),
        (
            "LOWCODE_FAAS_S3_ENDPOINT".into(),
            service_var("LOWCODE_FAAS_TEST_S3_ENDPOINT"),
        ),
        (
            "LOWCODE_FAAS_S3_BUCKET".into(),
            service_var("LOWCODE_FAAS_TEST_S3_BUCKET"),
        ),
        (
            "LOWCODE_FAAS_S3_ACCESS_KEY".into(),
            service_var("LOWCODE_FAAS_TEST_S3_ACCESS_KEY"),
        ),
        (
            "LOWCODE_FAAS_S3_SECRET_KEY".into(),
            service_var("LOWCODE_FAAS_TEST_S3_SECRET_KEY"),
        ),
        ("LOWCODE_FAAS_S3_PREFIX".into(), format!("{name}/")),
    ]
}

/// Starts a dispatcher on the given data dir (pre-populate it for legacy-layout tests).
pub async fn spawn_app_on(data: tempfile::TempDir, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = test_vars(data.path(), extra);
    if !extra.iter().any(|(k, _)| *k == "LOWCODE_FAAS_STORAGE") {
        vars.extend(storage_vars().await);
    }
    let settings = Settings::from_vars(vars).unwrap();
    let server = app::spawn(settings).await.unwrap();
    TestApp {
        base: format!("http://{}", server.addr),
        client: reqwest::Client::new(),
        data,
        server: Some(server),
    }
}

impl TestApp {
    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.reply(req).await
    }

    /// Sends a prepared request builder.
    pub async fn reply(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// `GET`
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// `POST` with JSON.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body)).await
    }

    /// `PUT` with JSON.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(body)).await
    }

    /// `DELETE`
    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }

    /// Creates a function at the root or in a collection and asserts 201.
    pub async fn create_function(&self, collection: &str, name: &str, source: &str, env: Value) -> Reply {
        let mut body = serde_json::json!({"name": name, "source_code": source, "env": env});
        if !collection.is_empty() {
            body["collection_path"] = Value::String(collection.to_owned());
        }
        let reply = self.post("/functions", body).await;
        assert_eq!(reply.status, 201, "create {collection}/{name}: {}", reply.text);
        reply
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().to_path_buf()
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Starts a worker (`/v1/run`) on `127.0.0.1:0` over `data`.
/// In db_s3 mode pass the same [`storage_vars`] to the dispatcher.
pub async fn spawn_worker(data: &Path, extra: &[(&str, &str)]) -> (String, RunningServer) {
    spawn_worker_at(data, "127.0.0.1:0", extra).await.unwrap()
}

/// Starts a worker listening on `listen` (`127.0.0.3:0`, or a fixed port to
/// restart one on its old address); `Err` when it cannot bind.
pub async fn spawn_worker_at(
    data: &Path,
    listen: &str,
    extra: &[(&str, &str)],
) -> Result<(String, RunningServer), faas_server::ServerError> {
    let mut vars = test_vars(data, extra);
    vars.push(("LOWCODE_FAAS_WORKER_LISTEN".to_owned(), listen.to_owned()));
    let settings = Settings::from_vars(vars).unwrap();
    let server = faas_worker::spawn(settings).await?;
    Ok((format!("http://{}", server.addr), server))
}

/// A loopback HTTP server that answers every request with `response`
/// (a complete HTTP/1.1 response text) and closes the connection.
pub async fn canned_server(response: String) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

/// A loopback server that accepts connections and never answers.
pub async fn silent_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    addr
}

/// A loopback port nothing answers on, held for as long as the returned
/// socket lives: the socket is bound but never listens, so connects are
/// refused and no other server of the suite can be given the port meanwhile.
pub async fn closed_port() -> (u16, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (port, socket)
}
