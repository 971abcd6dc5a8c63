//! Fetches against a loopback test server: limits, redirects, timeouts and
//! the SSRF policy end to end.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faas_ports::{PortError, SourceFetcher, SourceUrl};
use reqwest::dns::Resolve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::policy::{AddressPolicy, GuardedResolver, Refusal};
use super::*;
use crate::AdapterError;

const SOURCE: &str = "export default async function handler(input) { return input; }\n";
const LIMIT: u64 = 1024;

// ---- loopback test server ----

/// A tiny HTTP/1.1 server with canned routes; counts accepted connections.
struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    async fn start(ip: Ipv4Addr) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, addr.port()));
            }
        });
        Self { addr, connections }
    }

    fn url(&self, path: &str) -> SourceUrl {
        SourceUrl::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?;
    line.split(' ').nth(1).map(str::to_owned)
}

fn head(status: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn full(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head(status, &[("Content-Length", body.len().to_string())]);
    out.extend_from_slice(body);
    out
}

fn redirect_to(location: String) -> Vec<u8> {
    head("302 Found", &[("Location", location), ("Content-Length", "0".into())])
}

async fn serve(mut stream: TcpStream, port: u16) {
    let Some(path) = read_request_path(&mut stream).await else {
        return;
    };
    let big = vec![b'a'; 4 * LIMIT as usize];
    let response = match path.as_str() {
        "/ok" => full("200 OK", SOURCE.as_bytes()),
        "/missing" => full("404 Not Found", b"no such source"),
        "/not-utf8" => full("200 OK", b"ok \xff\xfe"),
        "/declared-big" => {
            // Announces more than the limit and sends nothing.
            head("200 OK", &[("Content-Length", "10000000".into())])
        }
        "/close-big" => {
            // No length at all: the body ends when the connection closes.
            let mut out = head("200 OK", &[]);
            out.extend_from_slice(&big);
            out
        }
        "/chunked-big" => {
            let mut out = head("200 OK", &[("Transfer-Encoding", "chunked".into())]);
            for piece in big.chunks(256) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "/slow" => {
            // Headers and part of the body, then nothing until the client
            // goes away.
            let mut out = head("200 OK", &[("Content-Length", "1000".into())]);
            out.extend_from_slice(b"export ");
            let _ = stream.write_all(&out).await;
            let mut sink = [0u8; 64];
            let _ = stream.read(&mut sink).await;
            return;
        }
        "/to-file" => redirect_to("file:///etc/passwd".into()),
        other => {
            if let Some(hops) = other.strip_prefix("/hop/") {
                match hops.parse::<u32>() {
                    Ok(0) => full("200 OK", SOURCE.as_bytes()),
                    Ok(n) => redirect_to(format!("/hop/{}", n - 1)),
                    Err(_) => full("400 Bad Request", b""),
                }
            } else if let Some(scheme) = other.strip_prefix("/to-scheme/") {
                redirect_to(format!("{scheme}://127.0.0.1:{port}/etc/passwd"))
            } else if let Some(rest) = other.strip_prefix("/to/") {
                // `/to/<host>/<path>` → `http://<host>:<this port>/<path>`
                let (host, target) = rest.split_once('/').unwrap_or((rest, ""));
                redirect_to(format!("http://{host}:{port}/{target}"))
            } else {
                full("404 Not Found", b"")
            }
        }
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

// ---- fetches ----

fn fetcher(allow_private: bool) -> HttpSourceFetcher {
    HttpSourceFetcher::new(FetchConfig {
        allow_private,
        ..FetchConfig::default()
    })
    .unwrap()
}

/// Public-only, except the address the test server listens on.
fn fetcher_exempting(ip: Ipv4Addr) -> HttpSourceFetcher {
    let exempt: Arc<[IpAddr]> = Arc::new([IpAddr::V4(ip)]);
    HttpSourceFetcher::with_policy(&FetchConfig::default(), AddressPolicy::PublicOnlyExcept(exempt)).unwrap()
}

fn assert_fails(result: Result<String, PortError>, code: &str, contains: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert!(err.to_string().contains(contains), "{err}");
}

#[tokio::test]
async fn fetches_a_200_body() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let body = fetcher(true).fetch(&server.url("/ok"), LIMIT).await.unwrap();
    assert_eq!(body, SOURCE);
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_accepted_one_byte_less_is_not() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let fetcher = fetcher(true);
    let exact = SOURCE.len() as u64;
    assert_eq!(fetcher.fetch(&server.url("/ok"), exact).await.unwrap(), SOURCE);
    let err = fetcher.fetch(&server.url("/ok"), exact - 1).await.unwrap_err();
    assert!(matches!(err, PortError::SourceTooLarge { limit } if limit == exact - 1));
}

#[tokio::test]
async fn non_200_status_fails() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let result = fetcher(true).fetch(&server.url("/missing"), LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "status 404");
}

#[tokio::test]
async fn streamed_body_past_the_limit_is_too_large() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let fetcher = fetcher(true);
    for path in ["/chunked-big", "/close-big"] {
        let err = fetcher.fetch(&server.url(path), LIMIT).await.unwrap_err();
        assert!(
            matches!(err, PortError::SourceTooLarge { limit: LIMIT }),
            "{path}: {err}"
        );
    }
    let body = fetcher.fetch(&server.url("/chunked-big"), 4 * LIMIT).await.unwrap();
    assert_eq!(body.len(), 4 * LIMIT as usize);
}

#[tokio::test]
async fn declared_length_past_the_limit_is_refused_up_front() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let err = fetcher(true)
        .fetch(&server.url("/declared-big"), LIMIT)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::SourceTooLarge { limit: LIMIT }), "{err}");
}

#[tokio::test]
async fn follows_up_to_max_redirects() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let fetcher = fetcher(true);
    assert_eq!(fetcher.fetch(&server.url("/hop/5"), LIMIT).await.unwrap(), SOURCE);
    let result = fetcher.fetch(&server.url("/hop/6"), LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "too many redirects");
}

#[tokio::test]
async fn follows_a_redirect_to_another_loopback_url_when_private_is_allowed() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let body = fetcher(true)
        .fetch(&server.url("/to/localhost/ok"), LIMIT)
        .await
        .unwrap();
    assert_eq!(body, SOURCE);
}

#[tokio::test]
async fn redirect_to_another_scheme_fails() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let fetcher = fetcher(true);
    for scheme in ["ftp", "gopher", "ws"] {
        let url = server.url(&format!("/to-scheme/{scheme}"));
        let result = fetcher.fetch(&url, LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", &format!("scheme '{scheme}'"));
    }
    // A `file:` Location is not a redirect target at all for the HTTP
    // stack: the 302 itself comes back, and fails as a status.
    let result = fetcher.fetch(&server.url("/to-file"), LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "status 302");
}

#[tokio::test]
async fn slow_body_times_out() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let fetcher = HttpSourceFetcher::new(FetchConfig {
        allow_private: true,
        timeout: Duration::from_millis(300),
        ..FetchConfig::default()
    })
    .unwrap();
    let result = fetcher.fetch(&server.url("/slow"), LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "timed out");
}

#[tokio::test]
async fn invalid_utf8_fails() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let result = fetcher(true).fetch(&server.url("/not-utf8"), LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "UTF-8");
}

#[tokio::test]
async fn connection_refused_fails() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = SourceUrl::parse(&format!("http://127.0.0.1:{port}/ok")).unwrap();
    let result = fetcher(true).fetch(&url, LIMIT).await;
    assert_fails(result, "SOURCE_FETCH_FAILED", "could not connect");
}

#[test]
fn zero_timeout_is_a_config_error() {
    let err = HttpSourceFetcher::new(FetchConfig {
        timeout: Duration::ZERO,
        ..FetchConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, AdapterError::Config(_)), "{err}");
}

// ---- SSRF ----

#[tokio::test]
async fn loopback_literal_is_forbidden_without_connecting() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let result = fetcher(false).fetch(&server.url("/ok"), LIMIT).await;
    assert_fails(result, "SOURCE_URL_FORBIDDEN", "127.0.0.1");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn hostname_resolving_to_loopback_is_forbidden() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let url = SourceUrl::parse(&format!("http://localhost:{}/ok", server.addr.port())).unwrap();
    let result = fetcher(false).fetch(&url, LIMIT).await;
    assert_fails(result, "SOURCE_URL_FORBIDDEN", "host 'localhost'");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn ipv4_mapped_loopback_is_forbidden() {
    let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
    let url = SourceUrl::parse(&format!("http://[::ffff:127.0.0.1]:{}/ok", server.addr.port())).unwrap();
    let result = fetcher(false).fetch(&url, LIMIT).await;
    assert_fails(result, "SOURCE_URL_FORBIDDEN", "::ffff:127.0.0.1");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn every_redirect_hop_is_checked() {
    // The server listens on 127.0.0.2, the one address the policy lets
    // through; every redirect goes somewhere else on loopback.
    let server_ip = Ipv4Addr::new(127, 0, 0, 2);
    let server = TestServer::start(server_ip).await;
    let fetcher = fetcher_exempting(server_ip);

    let direct = fetcher.fetch(&server.url("/hop/1"), LIMIT).await.unwrap();
    assert_eq!(direct, SOURCE, "hops within the allowed address are followed");

    for (path, named) in [
        ("/to/127.0.0.1/ok", "address 127.0.0.1 is loopback"),
        ("/to/[::ffff:127.0.0.1]/ok", "::ffff:127.0.0.1"),
        ("/to/[::1]/ok", "address ::1 is loopback"),
        ("/to/localhost/ok", "host 'localhost'"),
        ("/to/169.254.169.254/latest/meta-data", "169.254.169.254"),
    ] {
        let result = fetcher.fetch(&server.url(path), LIMIT).await;
        assert_fails(result, "SOURCE_URL_FORBIDDEN", named);
    }
}

#[tokio::test]
async fn resolver_keeps_allowed_addresses_and_refuses_the_rest() {
    let open = GuardedResolver {
        policy: AddressPolicy::Any,
    };
    let addrs: Vec<SocketAddr> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
    assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");

    let guarded = GuardedResolver {
        policy: AddressPolicy::PublicOnly,
    };
    let Err(err) = guarded.resolve("localhost".parse().unwrap()).await else {
        panic!("localhost must be refused");
    };
    assert!(err.downcast_ref::<Refusal>().is_some(), "{err}");
}
