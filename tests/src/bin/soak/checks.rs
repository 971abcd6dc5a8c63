//! The checks at the end: every acknowledged save is there once, and
//! nothing is left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::environment::{docker_ids, processes_under};
use crate::traffic::Tally;

/// What the versions of the function `counter` say about the acknowledged saves.
pub(crate) struct Versions {
    /// Acknowledged versions missing, or without their source.
    pub(crate) lost: Vec<String>,
    /// Versions acknowledged twice, or listed twice.
    pub(crate) duplicated: Vec<String>,
    /// How many versions the listing has.
    pub(crate) listed: usize,
    /// How many of them were never acknowledged (saves without an answer).
    pub(crate) unacked: usize,
}

/// Saved versions: every acknowledged save is there, with its source, once.
pub(crate) async fn check_versions(client: &reqwest::Client, base: &str, tally: &Tally) -> Versions {
    let mut lost = Vec::new();
    let mut duplicated = Vec::new();
    for (version, tokens) in &tally.acked {
        if tokens.len() > 1 {
            duplicated.push(format!("version {version} acknowledged to {tokens:?}"));
        }
        let res = client
            .get(format!("{base}/functions/counter?version={version}"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let source = body["source_code"].as_str().unwrap_or("");
        if status != 200 || !tokens.iter().any(|t| source.contains(&format!("// {t}\n"))) {
            lost.push(format!(
                "version {version} ({tokens:?}): {status} {}",
                &source[..source.len().min(40)]
            ));
        }
    }
    let listed: Vec<u64> = client
        .get(format!("{base}/functions/counter/versions"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap_or(Value::Null)
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["version"].as_u64()).collect())
        .unwrap_or_default();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != listed.len() {
        duplicated.push(format!(
            "the versions listing repeats a number ({} listed, {} distinct)",
            listed.len(),
            sorted.len()
        ));
    }
    let unacked = listed.iter().filter(|v| !tally.acked.contains_key(v)).count();
    Versions {
        lost,
        duplicated,
        listed: listed.len(),
        unacked,
    }
}

/// The containers owned by `instance` and the processes under `worker_tmp`
/// still there after the shutdown, waiting up to 20 s for them to go.
pub(crate) async fn leftovers(instance: &str, worker_tmp: &Path) -> (Vec<String>, Vec<u32>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut containers, mut processes);
    loop {
        containers = docker_ids(&[&format!("label=lowcode-faas.owner={instance}")]);
        processes = processes_under(worker_tmp);
        if (containers.is_empty() && processes.is_empty()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (containers, processes)
}
