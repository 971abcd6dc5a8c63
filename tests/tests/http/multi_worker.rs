//! Many workers (issue #14): two dispatchers and three workers on distinct
//! loopback addresses over one storage, workers in `warm` mode. Each
//! function stays on one worker (its warm runners), a worker killed
//! mid-load costs only the runs it had, and it gets its share back when it
//! returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use faas_server::app::RunningServer;
use faas_tests::{spawn_app_on, spawn_worker_at, storage_vars, Reply, TestApp};
use serde_json::json;

const WORKER_IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const DISPATCHER_IPS: [&str; 2] = ["127.0.0.5", "127.0.0.6"];
const FUNCTIONS: usize = 6;
const INVOKES: usize = 30;
const HEADER: &str = "x-lowcode-faas-worker";
/// Bound on every wait for a state change (never a wall-clock assertion).
const DEADLINE: Duration = Duration::from_secs(60);

struct Cluster {
    data: tempfile::TempDir,
    storage: Vec<(String, String)>,
    workers: Vec<(String, Option<RunningServer>)>,
    dispatchers: Vec<TestApp>,
}

impl Cluster {
    fn worker_vars(&self) -> Vec<(&str, &str)> {
        let mut vars = vec![("LOWCODE_FAAS_EXECUTION_MODE", "warm")];
        vars.extend(self.storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        vars
    }

    async fn start() -> Cluster {
        let mut cluster = Cluster {
            data: tempfile::tempdir().unwrap(),
            storage: storage_vars().await,
            workers: Vec::new(),
            dispatchers: Vec::new(),
        };
        for ip in WORKER_IPS {
            let (base, server) = spawn_worker_at(cluster.data.path(), &format!("{ip}:0"), &cluster.worker_vars())
                .await
                .unwrap();
            cluster.workers.push((base, Some(server)));
        }
        let list = cluster
            .workers
            .iter()
            .map(|(b, _)| b.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let shared_dir = cluster.data.path().display().to_string();
        for ip in DISPATCHER_IPS {
            let listen = format!("{ip}:0");
            let mut vars: Vec<(&str, &str)> = vec![
                ("LOWCODE_FAAS_LISTEN", &listen),
                ("LOWCODE_FAAS_WORKER_URL", &list),
                ("LOWCODE_FAAS_WORKER_HEALTH_INTERVAL_MS", "200"),
                // files mode: every process over one directory.
                ("LOWCODE_FAAS_DATA_DIR", &shared_dir),
            ];
            vars.extend(cluster.storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let app = spawn_app_on(tempfile::tempdir().unwrap(), &vars).await;
            cluster.dispatchers.push(app);
        }
        cluster
    }

    /// Waits until every dispatcher's `/readyz` counts `healthy` workers.
    async fn wait_healthy(&self, healthy: u64) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        for d in &self.dispatchers {
            loop {
                let r = d.get("/readyz").await;
                if r.body["workers"]["healthy"] == healthy {
                    assert_eq!(r.body["workers"]["total"], 3, "{}", r.text);
                    assert_eq!(r.status, if healthy > 0 { 200 } else { 503 }, "{}", r.text);
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{}: never {healthy} healthy workers: {}",
                    d.base,
                    r.text
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn name(i: usize) -> String {
    format!("fn{i}")
}

async fn invoke(app: &TestApp, function: &str) -> Reply {
    app.post(&format!("/collections/load/functions/{function}/invoke"), json!({}))
        .await
}

fn worker_of(r: &Reply) -> String {
    r.headers
        .get(HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_worker_routing_failover_and_recovery() {
    let mut cluster = Cluster::start().await;
    let d0 = &cluster.dispatchers[0];
    assert_eq!(d0.post("/collections", json!({"path": "load"})).await.status, 201);
    for i in 0..FUNCTIONS {
        d0.create_function(
            "load",
            &name(i),
            "let n = 0; export async function handler(){ n += 1; return {ok: true, data: {n}}; }",
            json!({}),
        )
        .await;
    }
    cluster.wait_healthy(3).await;

    // 1. Steady load over both dispatchers: one worker per function, warm after the first run.
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut warm, mut later) = (0, 0);
    let streams = (0..FUNCTIONS).map(|i| {
        let dispatchers = &cluster.dispatchers;
        async move {
            let mut replies = Vec::new();
            for n in 0..INVOKES {
                replies.push(invoke(&dispatchers[n % dispatchers.len()], &name(i)).await);
            }
            (name(i), replies)
        }
    });
    for (function, replies) in futures_util::future::join_all(streams).await {
        for (n, r) in replies.iter().enumerate() {
            assert_eq!(r.status, 200, "{function}: {}", r.text);
            assert_eq!(r.body["status"], "success", "{}", r.text);
            served.entry(function.clone()).or_default().insert(worker_of(r));
            if n > 0 {
                later += 1;
                warm += usize::from(r.body["start_kind"] == "warm");
            }
        }
    }
    for (function, workers) in &served {
        assert_eq!(workers.len(), 1, "{function} was served by {workers:?}");
        assert!(cluster.workers.iter().any(|(b, _)| workers.contains(b)), "{workers:?}");
    }
    assert!(
        warm * 10 >= later * 9,
        "warm hits {warm} of {later} after the first runs"
    );
    let home: BTreeMap<String, String> = served
        .into_iter()
        .map(|(f, ws)| (f, ws.into_iter().next().unwrap()))
        .collect();

    // 2. The worker with the most functions dies mid-load.
    let victim = cluster
        .workers
        .iter()
        .map(|(b, _)| b.clone())
        .max_by_key(|b| home.values().filter(|h| *h == b).count())
        .unwrap();
    let victim_functions: BTreeSet<&String> = home.iter().filter(|(_, h)| **h == victim).map(|(f, _)| f).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Reply)>();
    let load: Vec<_> = (0..FUNCTIONS)
        .map(|i| {
            let dispatchers = &cluster.dispatchers;
            let tx = tx.clone();
            async move {
                for n in 0..INVOKES {
                    let r = invoke(&dispatchers[n % dispatchers.len()], &name(i)).await;
                    tx.send((name(i), r)).unwrap();
                }
            }
        })
        .collect();
    drop(tx);
    let slot = cluster.workers.iter_mut().find(|(b, _)| *b == victim).unwrap();
    let mut server = slot.1.take();
    let collect = async {
        let mut results = Vec::new();
        while let Some(result) = rx.recv().await {
            results.push(result);
            if results.len() == FUNCTIONS * 3 {
                if let Some(s) = server.take() {
                    s.abort().await;
                }
            }
        }
        results
    };
    let load = async {
        futures_util::future::join_all(load).await;
    };
    let ((), results) = tokio::join!(load, collect);
    assert!(server.is_none(), "the worker was killed during the load");
    let mut failed = 0;
    for (function, r) in &results {
        if r.status == 200 {
            assert_eq!(r.body["status"], "success", "{}", r.text);
            continue;
        }
        failed += 1;
        assert_eq!(
            (r.status, r.code()),
            (502, "WORKER_UNAVAILABLE"),
            "{function}: {}",
            r.text
        );
        assert!(
            victim_functions.contains(function),
            "{function} failed but its worker is alive: {}",
            r.text
        );
    }
    for function in &victim_functions {
        let (_, last) = results.iter().rev().find(|(f, _)| f == *function).unwrap();
        assert_eq!(last.status, 200, "{function} after the kill: {}", last.text);
        assert_ne!(
            worker_of(last),
            victim,
            "{function} moved to the next worker during the load"
        );
    }
    eprintln!(
        "multi_worker: homes {home:?}; warm {warm} of {later}; {failed} of {} runs failed when {victim} died",
        results.len()
    );
    // At most one run in flight per stream and dispatcher connection when it died.
    assert!(failed <= FUNCTIONS * 2, "{failed} failures for one dead worker");

    cluster.wait_healthy(2).await;
    for function in &victim_functions {
        let mut now = BTreeSet::new();
        for d in &cluster.dispatchers {
            for _ in 0..3 {
                let r = invoke(d, function).await;
                assert_eq!(r.status, 200, "{function}: {}", r.text);
                now.insert(worker_of(&r));
            }
        }
        assert_eq!(now.len(), 1, "{function} goes to one other worker: {now:?}");
        assert!(!now.contains(&victim));
    }
    for (function, h) in home.iter().filter(|(_, h)| **h != victim) {
        let r = invoke(&cluster.dispatchers[1], function).await;
        assert_eq!((r.status, worker_of(&r)), (200, h.clone()), "{function} keeps its home");
    }

    // 3. It comes back on the same address and gets its share back.
    let listen = victim.trim_start_matches("http://").to_owned();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let restarted = loop {
        match spawn_worker_at(cluster.data.path(), &listen, &cluster.worker_vars()).await {
            Ok((_, server)) => break server,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cannot restart on {listen}: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    cluster.workers.iter_mut().find(|(b, _)| *b == victim).unwrap().1 = Some(restarted);
    cluster.wait_healthy(3).await;
    for function in &victim_functions {
        for d in &cluster.dispatchers {
            let r = invoke(d, function).await;
            assert_eq!(
                (r.status, worker_of(&r)),
                (200, victim.clone()),
                "{function}: {}",
                r.text
            );
        }
    }

    let metrics = cluster.dispatchers[0]
        .client
        .get(format!("{}/metrics", cluster.dispatchers[0].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (base, _) in &cluster.workers {
        assert!(
            metrics.contains(&format!("lowcode_faas_worker_healthy{{worker=\"{base}\"}} 1")),
            "{metrics}"
        );
    }
    let readyz = cluster.dispatchers[1].get("/readyz").await;
    assert_eq!(readyz.body["workers"]["each"][&victim], "healthy", "{}", readyz.text);
    for d in cluster.dispatchers.drain(..) {
        d.stop().await;
    }
    for (_, server) in cluster.workers.drain(..) {
        if let Some(s) = server {
            s.shutdown().await;
        }
    }
}
