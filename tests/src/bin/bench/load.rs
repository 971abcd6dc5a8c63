//! Deploying the hello function and driving invokes against a server.

use super::*;

pub(crate) async fn deploy(client: &reqwest::Client, base: &str) {
    faas_tests::proc_support::deploy(client, base, "hello", HELLO).await;
}

/// One invoke; its latency and start kind.
pub(crate) async fn invoke(client: &reqwest::Client, url: &str, body: &Value) -> (Duration, String) {
    let started = Instant::now();
    let res = client.post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    let value: Value = res.json().await.unwrap_or(Value::Null);
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{value}");
    assert_eq!(value["status"], "success", "{value}");
    (elapsed, value["start_kind"].as_str().unwrap_or("-").to_string())
}

/// `n` invokes one at a time (so invokes/s at one client = `n` / the wall
/// time). With `refill`, waits for that many idle pool runners before each
/// (the wait counts in the rate, not in the latency).
pub(crate) async fn sequential(server: &Server, client: &reqwest::Client, n: usize, refill: Option<u64>) -> Level {
    let url = format!("{}/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    let (mut samples, mut kinds) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in 0..n {
        if let Some(size) = refill {
            server.wait_pool(client, size).await;
        }
        let (d, kind) = invoke(client, &url, &body).await;
        samples.push(d);
        kinds.push(kind);
    }
    Level {
        rate: n as f64 / started.elapsed().as_secs_f64(),
        latency: Series::from(samples),
        kinds: summarise_kinds(&kinds),
    }
}

/// `clients` concurrent clients for `seconds`, each waiting for an idle pool
/// runner before every invoke (the wait counts in the rate, not in the
/// latency): what the pool's refills sustain.
pub(crate) async fn refilled_load(server: &Server, clients: usize, seconds: f64) -> Load {
    let url = format!("{}/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let per_client = (0..clients).map(|_| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
            let (mut latencies, mut kinds) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                server.wait_pool(&client, 1).await;
                let (d, kind) = invoke(&client, &url, &body).await;
                latencies.push(d);
                kinds.push(kind);
            }
            (latencies, kinds)
        }
    });
    let mut out = Load::default();
    for (latencies, kinds) in futures_util::future::join_all(per_client).await {
        out.latencies.extend(latencies);
        out.kinds.extend(kinds);
    }
    out.rate = out.latencies.len() as f64 / started.elapsed().as_secs_f64();
    out
}
