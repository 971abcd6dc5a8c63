//! The pool against small in-process fakes: loopback servers with canned
//! replies (or none), closed ports, and a resolver from a table.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize};
use std::sync::Mutex as StdMutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A loopback worker answering every request with `status` (changeable),
/// counting the requests it got.
#[derive(Debug, Clone)]
struct Fake {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl Fake {
    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `status` 0 = read the request, then close without answering.
async fn fake(status: u16) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        addr: listener.local_addr().unwrap(),
        status: Arc::new(AtomicU16::new(status)),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let (status, hits) = (Arc::clone(&fake.status), Arc::clone(&fake.hits));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (status, hits) = (Arc::clone(&status), Arc::clone(&hits));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                // Until the end of the head and its body (content-length).
                loop {
                    let Ok(n) = sock.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if seen.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let status = status.load(Ordering::SeqCst);
                if status == 0 {
                    return;
                }
                let body = r#"{"error":"x","code":"X"}"#;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    fake
}

/// A loopback port with nothing listening on it.
async fn closed() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A resolver answering from a table (a missing name is an error).
#[derive(Debug, Default)]
struct Table(StdMutex<HashMap<String, Vec<IpAddr>>>);

impl Table {
    fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.0.lock().unwrap().insert(host.to_owned(), ips);
    }

    fn remove(&self, host: &str) {
        self.0.lock().unwrap().remove(host);
    }
}

#[async_trait::async_trait]
impl Resolve for Table {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::other("no such name"))
    }
}

fn config(urls: &[String]) -> PoolConfig {
    PoolConfig {
        urls: urls.to_vec(),
        token: None,
        max_reply_bytes: 1024 * 1024,
        dns_refresh: Duration::from_secs(10),
        health_interval: Duration::from_secs(2),
        proxy: faas_adapters::outbound::OutboundProxy::none(),
    }
}

async fn pool_with(urls: &[String], resolver: Arc<dyn Resolve>) -> (Arc<WorkerPool>, Metrics) {
    let metrics = Metrics::new().unwrap();
    let pool = WorkerPool::new(config(urls), resolver, metrics.clone()).unwrap();
    pool.refresh().await;
    (pool, metrics)
}

async fn pool(urls: &[String]) -> (Arc<WorkerPool>, Metrics) {
    pool_with(urls, Arc::new(Table::default())).await
}

fn run_request() -> RunRequest {
    RunRequest {
        collection_path: None,
        function_name: "f".into(),
        input: None,
        timeout_ms: None,
        env: None,
        version: None,
        include_logs: None,
    }
}

/// A key whose rendezvous order over `bases` starts with `first`.
fn key_homed_on(bases: &[String], first: &str) -> String {
    let mut sorted = bases.to_vec();
    sorted.sort();
    (0..10_000)
        .map(|i| format!("fn-{i}"))
        .find(|k| sorted[faas_sim::rendezvous::home(k, &sorted).unwrap()] == first)
        .unwrap()
}

fn header(response: &Response) -> &str {
    response.headers()[WORKER_HEADER].to_str().unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn two_dispatchers_agree_and_keys_spread() {
    let bases: Vec<String> = (1..=3).map(|i| format!("http://10.0.0.{i}:9090")).collect();
    let (a, _) = pool(&bases).await;
    let mut reversed = bases.clone();
    reversed.reverse();
    let (b, _) = pool(&reversed).await;
    let mut homes: HashMap<String, usize> = HashMap::new();
    for i in 0..300 {
        let key = format!("team/fn-{i}");
        let order = a.order_of(&key);
        assert_eq!(order, b.order_of(&key), "{key}: the list's order does not matter");
        assert_eq!(order.len(), 3);
        *homes.entry(order[0].clone()).or_default() += 1;
    }
    assert_eq!(homes.len(), 3);
    assert!(homes.values().all(|n| (60..140).contains(n)), "{homes:?}");
}

#[tokio::test]
async fn unhealthy_workers_go_last_and_tries_are_bounded() {
    let bases: Vec<String> = (1..=5).map(|i| format!("http://10.0.0.{i}:9090")).collect();
    let (p, _) = pool(&bases).await;
    let key = "a/b";
    let full = faas_sim::rendezvous::rank(key, &p.health().each.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>());
    assert_eq!(full.len(), 5);
    let order = p.order_of(key);
    assert_eq!(order.len(), MAX_TRIES);
    let home = order[0].clone();
    let worker = p.snapshot().into_iter().find(|w| w.client.base() == home).unwrap();
    p.mark(&worker, WorkerGauge::Unhealthy);
    let after = p.order_of(key);
    assert_eq!(after[..2], order[1..], "the next ones in hash order move up");
    assert!(
        !after.contains(&home),
        "a healthy third is preferred to the unhealthy home"
    );
    p.mark(&worker, WorkerGauge::Healthy);
    assert_eq!(p.order_of(key), order, "a recovered worker gets its keys back");
}

#[test]
fn route_keys_name_collection_function_version_and_sorted_env() {
    use faas_ports::{CollectionPath, EnvMap, FunctionName, Version};
    let request = |cp: &str, version: Option<u64>, env: serde_json::Value| InvokeRequest {
        collection_path: CollectionPath::parse(cp).unwrap(),
        name: FunctionName::parse("hello").unwrap(),
        input: faas_domain::RunInput::parse(None).unwrap(),
        timeout: None,
        include_logs: false,
        env: EnvMap::from_json(&env).unwrap(),
        version: version.map(|v| Version::from_json(&json!(v)).unwrap()),
    };
    let cases = [
        (request("", None, json!({})), "hello"),
        (request("team/api", None, json!(null)), "team/api/hello"),
        (request("team", Some(7), json!({})), "team/hello@v7"),
        (
            request("", None, json!({"B": "2", "A": "1"})),
            r#"hello#{"A":"1","B":"2"}"#,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(route_key(&req), want);
    }
}

#[tokio::test]
async fn a_refused_connection_moves_to_the_next_worker() {
    let dead = closed().await;
    let ok = fake(200).await;
    let bases = vec![dead.clone(), ok.base()];
    let (p, metrics) = pool(&bases).await;
    let key = key_homed_on(&bases, &dead);
    let (response, _) = p.run(&key, &run_request(), WAIT).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response), ok.base());
    assert_eq!(ok.hits(), 1);
    assert_eq!(p.health().healthy, 1, "the refusing worker is marked unhealthy");
    let text = metrics.render(None, None);
    assert!(
        text.contains(&format!("lowcode_faas_worker_failures_total{{worker=\"{dead}\"}} 1")),
        "{text}"
    );
    assert!(text.contains(&format!("lowcode_faas_worker_healthy{{worker=\"{dead}\"}} 0")));
    // While it is unhealthy its keys go straight to the next one.
    p.run(&key, &run_request(), WAIT).await.unwrap();
    assert!(!metrics
        .render(None, None)
        .contains(&format!("lowcode_faas_worker_requests_total{{worker=\"{dead}\"}} 2")));
}

#[tokio::test]
async fn a_run_that_may_have_happened_is_never_sent_twice() {
    for status in [0u16, 500, 503] {
        let first = fake(status).await;
        let other = fake(200).await;
        let bases = vec![first.base(), other.base()];
        let (p, _) = pool(&bases).await;
        let key = key_homed_on(&bases, &first.base());
        let result = p.run(&key, &run_request(), WAIT).await;
        match status {
            0 => assert_eq!(result.unwrap_err().code, "WORKER_UNAVAILABLE", "reset after sending"),
            s => {
                let (response, _) = result.unwrap();
                assert_eq!(response.status().as_u16(), s, "a 5xx passes through");
                assert_eq!(header(&response), first.base());
            }
        }
        assert_eq!(first.hits(), 1);
        assert_eq!(other.hits(), 0, "status {status}: not sent to a second worker");
        assert_eq!(p.health().healthy, 1, "status {status}: the worker is marked unhealthy");
    }
}

#[tokio::test]
async fn a_full_worker_passes_the_run_on_and_the_last_429_is_returned() {
    let full = fake(429).await;
    let ok = fake(200).await;
    let bases = vec![full.base(), ok.base()];
    let (p, _) = pool(&bases).await;
    let key = key_homed_on(&bases, &full.base());
    let (response, _) = p.run(&key, &run_request(), WAIT).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), header(&response)),
        (200, ok.base().as_str())
    );
    assert_eq!(p.health().healthy, 2, "a 429 is not ill health");
    ok.status.store(429, Ordering::SeqCst);
    let (response, _) = p.run(&key, &run_request(), WAIT).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(full.hits() + ok.hits(), 4);
}

#[tokio::test]
async fn probes_mark_workers_down_and_up() {
    let w = fake(200).await;
    let (p, metrics) = pool(&[w.base()]).await;
    p.probe_all().await;
    assert_eq!(
        p.health(),
        PoolHealth {
            healthy: 1,
            total: 1,
            each: vec![(w.base(), true)]
        }
    );
    w.status.store(503, Ordering::SeqCst);
    p.probe_all().await;
    assert_eq!(p.health().healthy, 0);
    assert!(metrics
        .render(None, None)
        .contains(&format!("lowcode_faas_worker_healthy{{worker=\"{}\"}} 0", w.base())));
    // Unhealthy is still tried when nothing else is left.
    w.status.store(200, Ordering::SeqCst);
    let (response, _) = p.run("k", &run_request(), WAIT).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(p.health().healthy, 1, "a good reply marks it healthy");
    w.status.store(503, Ordering::SeqCst);
    p.probe_all().await;
    w.status.store(200, Ordering::SeqCst);
    p.probe_all().await;
    assert_eq!(p.health().healthy, 1, "the probe gives it its share back");
    assert_eq!(
        p.health().to_json(),
        json!({"healthy": 1, "total": 1, "each": {w.base(): "healthy"}})
    );
}

#[tokio::test]
async fn names_are_resolved_again_and_keep_health() {
    let table = Arc::new(Table::default());
    table.set("workers.test", &["10.0.0.1", "10.0.0.2"]);
    let urls = vec!["http://workers.test:9090".to_owned(), "http://10.9.9.9:1".to_owned()];
    let (p, metrics) = pool_with(&urls, Arc::clone(&table) as Arc<dyn Resolve>).await;
    let bases = |p: &WorkerPool| p.health().each.into_iter().map(|(b, _)| b).collect::<Vec<_>>();
    assert_eq!(
        bases(&p),
        ["http://10.0.0.1:9090", "http://10.0.0.2:9090", "http://10.9.9.9:1"]
    );
    let w2 = p
        .snapshot()
        .into_iter()
        .find(|w| w.client.base() == "http://10.0.0.2:9090")
        .unwrap();
    p.mark(&w2, WorkerGauge::Unhealthy);

    table.set("workers.test", &["10.0.0.2", "10.0.0.3", "fd00::1"]);
    p.refresh().await;
    assert_eq!(
        p.health().each,
        [
            ("http://10.0.0.2:9090".to_owned(), false),
            ("http://10.0.0.3:9090".to_owned(), true),
            ("http://10.9.9.9:1".to_owned(), true),
            ("http://[fd00::1]:9090".to_owned(), true),
        ],
        "a staying worker keeps its health, new ones start healthy"
    );
    assert!(
        !metrics.render(None, None).contains("10.0.0.1:9090"),
        "a gone worker's series are dropped"
    );

    table.remove("workers.test");
    p.refresh().await;
    assert_eq!(p.health().total, 4, "a failed lookup keeps the last answer");
    table.set("workers.test", &[]);
    p.refresh().await;
    assert_eq!(bases(&p), ["http://10.9.9.9:1"], "an empty answer empties the name");
    let err = WorkerPool::new(config(&[]), Arc::new(Table::default()), Metrics::new().unwrap())
        .unwrap()
        .run("k", &run_request(), WAIT)
        .await
        .unwrap_err();
    assert_eq!(err.code, "WORKER_UNAVAILABLE");
}
