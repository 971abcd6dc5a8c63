//! The traffic: clients looping over a weighted mix of invokes, and savers
//! saving one function concurrently; what each saw, tallied.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The functions the traffic uses, with what each invoke must answer.
pub(crate) const FUNCTIONS: &[(&str, &str)] = &[
    (
        "ok",
        "export async function handler(input) { return { ok: true, data: { n: input.n ?? 0 } }; }",
    ),
    (
        "biz",
        "export async function handler() { return { ok: false, error: 'declined', code: 'E_DECLINED' }; }",
    ),
    ("throws", "export async function handler() { throw new Error('boom'); }"),
    ("spin", "export async function handler() { for (;;) {} }"),
    (
        "oom",
        "export async function handler() { const a = []; for (;;) { a.push(new Array(1e6).fill(Math.random())); } }",
    ),
    (
        "big",
        "export async function handler() { return { ok: true, data: 'x'.repeat(7 * 1024 * 1024) }; }",
    ),
];

/// One kind of request of the mix: its weight and what it must answer.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ok,
    Biz,
    Throws,
    Spin,
    Oom,
    Big,
    BadJson,
    Missing,
}

const MIX: &[(Kind, u32)] = &[
    (Kind::Ok, 45),
    (Kind::Biz, 12),
    (Kind::Throws, 10),
    (Kind::Spin, 4),
    (Kind::Oom, 3),
    (Kind::Big, 3),
    (Kind::BadJson, 12),
    (Kind::Missing, 11),
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Biz => "biz",
            Kind::Throws => "throws",
            Kind::Spin => "spin",
            Kind::Oom => "oom",
            Kind::Big => "big",
            Kind::BadJson => "bad-json",
            Kind::Missing => "missing",
        }
    }

    /// The outcome label a healthy system answers (see [`label`]).
    fn expected(self) -> &'static str {
        match self {
            Kind::Ok => "200 success ok",
            Kind::Biz => "200 success declined",
            Kind::Throws => "200 failed HANDLER_THROW",
            Kind::Spin => "200 failed TIMEOUT",
            Kind::Oom => "200 failed OUT_OF_MEMORY",
            Kind::Big => "200 failed OUTPUT_TOO_LARGE",
            Kind::BadJson => "400 INVALID_JSON",
            Kind::Missing => "404 FUNCTION_NOT_FOUND",
        }
    }
}

/// A small xorshift generator: the mix needs no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self) -> Kind {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut r = (self.next() % u64::from(total)) as u32;
        for (kind, w) in MIX {
            if r < *w {
                return *kind;
            }
            r -= w;
        }
        Kind::Ok
    }
}

/// `"<status> <run status> <code>"` for a RunResult, `"<status> <code>"` for an error.
fn label(status: u16, body: &Value) -> String {
    if status == 200 && body.get("run_id").is_some() {
        let run = body["status"].as_str().unwrap_or("?");
        if run == "success" {
            let what = if body["output"]["ok"] == true { "ok" } else { "declined" };
            return format!("200 success {what}");
        }
        return format!("200 {run} {}", body["error_code"].as_str().unwrap_or("?"));
    }
    format!("{status} {}", body["code"].as_str().unwrap_or("-"))
}

/// Something that did not answer as a healthy system would.
#[derive(Debug, Clone)]
pub(crate) struct Oddity {
    /// When, from the start of the traffic.
    pub(crate) at: Duration,
    /// `<kind>: <outcome>`.
    pub(crate) what: String,
    /// A 5xx or no answer at all.
    pub(crate) server_error: bool,
}

/// What the clients and savers saw.
#[derive(Default)]
pub(crate) struct Tally {
    /// Requests by outcome label.
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// Answers a healthy system would not give.
    pub(crate) oddities: Vec<Oddity>,
    /// version → tokens acknowledged with it.
    pub(crate) acked: HashMap<u64, Vec<String>>,
    /// Saves that got no answer (or an error): they may or may not have happened.
    pub(crate) saves_uncertain: u64,
}

/// What the traffic tasks share with the main loop.
pub(crate) struct Shared {
    /// When the traffic started.
    pub(crate) start: Instant,
    /// Set to end the traffic.
    pub(crate) stop: AtomicBool,
    /// What was seen so far.
    pub(crate) tally: Mutex<Tally>,
    /// Requests sent so far.
    pub(crate) requests: AtomicU64,
}

impl Shared {
    fn record(&self, key: String, odd: Option<(String, bool)>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut t = self.tally.lock().unwrap();
        *t.outcomes.entry(key).or_default() += 1;
        if let Some((what, server_error)) = odd {
            t.oddities.push(Oddity {
                at: self.start.elapsed(),
                what,
                server_error,
            });
        }
    }
}

/// One client: requests of the weighted mix until `stop`.
pub(crate) async fn client_loop(shared: Arc<Shared>, base: String, seed: u64) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = Rng(seed | 1);
    while !shared.stop.load(Ordering::Relaxed) {
        let kind = rng.pick();
        let name = kind.name();
        let request = match kind {
            Kind::BadJson => client
                .post(format!("{base}/functions/ok/invoke"))
                .header("content-type", "application/json")
                .body("{\"input\": "),
            Kind::Missing => client
                .post(format!("{base}/functions/no-such-function/invoke"))
                .json(&json!({})),
            Kind::Spin => client
                .post(format!("{base}/functions/spin/invoke"))
                .json(&json!({"timeout_ms": 1500})),
            Kind::Ok => client
                .post(format!("{base}/functions/ok/invoke"))
                .json(&json!({"input": {"n": rng.next() % 1000}})),
            _ => client.post(format!("{base}/functions/{name}/invoke")).json(&json!({})),
        };
        let (got, server_error) = match request.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                (label(status, &body), status >= 500)
            }
            Err(e) => (format!("transport error ({})", transport_kind(&e)), true),
        };
        let expected = kind.expected();
        let odd = (got != expected).then(|| (format!("{name}: {got}"), server_error));
        shared.record(format!("{name}: {got}"), odd);
        if server_error {
            // As a real client would: back off instead of hammering a server
            // that is down (a refused connect fails at once).
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "other"
    }
}

/// One saver: saves of the function `counter`, each with its own token, until `stop`.
pub(crate) async fn saver_loop(shared: Arc<Shared>, base: String, saver: usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        seq += 1;
        let token = format!("saver-{saver}-{seq}");
        let source =
            format!("// {token}\nexport async function handler() {{ return {{ ok: true, data: '{token}' }}; }}");
        let res = client
            .post(format!("{base}/functions"))
            .json(&json!({"name": "counter", "source_code": source}))
            .send()
            .await;
        let (got, server_error, version) = match res {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let version = (status == 201).then(|| body["version"].as_u64()).flatten();
                (
                    format!("{status} {}", body["code"].as_str().unwrap_or("-")),
                    status >= 500,
                    version,
                )
            }
            Err(e) => (format!("transport error ({})", transport_kind(&e)), true, None),
        };
        let key = format!("save: {got}");
        match version {
            Some(v) => {
                shared.tally.lock().unwrap().acked.entry(v).or_default().push(token);
                shared.record(key, None);
            }
            None => {
                shared.tally.lock().unwrap().saves_uncertain += 1;
                shared.record(key.clone(), Some((key, server_error)));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
