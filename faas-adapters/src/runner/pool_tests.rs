//! The pool over in-memory runners ([`crate::runner::testing::FakeLauncher`]):
//! refill, cold fallback, warm reuse per key, LRU eviction, TTL, no reuse
//! after a failure, ended runners never handed a job, and the caps (busy
//! warm runners included) under concurrent load. Nothing here asserts a
//! time: waits are bounded polls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use faas_ports::{ErrorCode, RunJob, RunOutput, StartKind};
use tokio::time::Instant;

use super::Pool;
use crate::runner::testing::{check_caps, FakeLauncher, FakeWorld};
use crate::runner::{ExecutionConfig, ExecutionMode, Launcher};
use crate::runtime_contract::{contract_job, envelope};

fn config(mode: ExecutionMode, pool: usize) -> ExecutionConfig {
    ExecutionConfig {
        mode,
        prewarm_pool_size: pool,
        ..ExecutionConfig::default()
    }
}

fn pool_with(config: ExecutionConfig, launch_time: Duration) -> (Pool, Arc<FakeWorld>) {
    let launcher = FakeLauncher {
        launch_time,
        ..FakeLauncher::default()
    };
    let world = Arc::clone(&launcher.world);
    (Pool::new(Arc::new(launcher) as Arc<dyn Launcher>, config), world)
}

/// A job of warm key `key` with `input`.
fn job(key: &str, input: &str) -> RunJob {
    let mut job = contract_job("fake");
    job.env.insert("KEY".into(), key.into());
    job.input_json = input.as_bytes().to_vec();
    job
}

/// The fake runner's id and its call count.
fn who(output: &RunOutput) -> (u64, u64) {
    let data = &envelope(output)["value"]["data"];
    (data["runner"].as_u64().unwrap(), data["calls"].as_u64().unwrap())
}

/// Polls (bounded) until `pred` holds.
async fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn prewarm_refills_and_never_serves_a_runner_twice() {
    let (pool, world) = pool_with(config(ExecutionMode::Prewarm, 2), Duration::ZERO);
    pool.start();
    eventually("the pool fills", || pool.counts().prewarm_idle == 2).await;
    let mut runners = BTreeSet::new();
    for _ in 0..4 {
        eventually("the pool refills", || pool.counts().prewarm_idle == 2).await;
        let output = pool.run(job("a", "{}")).await.unwrap();
        assert_eq!(output.start_kind, StartKind::Prewarm);
        let (runner, calls) = who(&output);
        assert_eq!(calls, 1, "a prewarmed runner serves one run");
        assert!(runners.insert(runner), "runner {runner} served twice");
    }
    // Every used runner is destroyed; only the pool's stay.
    eventually("used runners are destroyed", || {
        pool.counts().prewarm_idle == 2 && world.alive.load(Ordering::SeqCst) == 2
    })
    .await;
    let status = pool.status().pool.unwrap();
    assert_eq!((status.hits, status.misses, status.warm_idle), (4, 0, 0));
    pool.shutdown().await;
    assert_eq!(world.alive.load(Ordering::SeqCst), 0, "shutdown destroys the pool");
}

#[tokio::test]
async fn an_empty_pool_falls_back_to_a_cold_start() {
    // Launches take long enough that the first run finds the pool empty.
    let (pool, world) = pool_with(config(ExecutionMode::Prewarm, 1), Duration::from_millis(200));
    let output = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(output.start_kind, StartKind::Cold);
    assert_eq!(pool.status().pool.unwrap().misses, 1);
    // Launches that fail: the run fails as a cold start would, never spins.
    world.fail.store(true, Ordering::SeqCst);
    pool.shutdown().await;
    let (pool, world) = pool_with(config(ExecutionMode::Prewarm, 1), Duration::ZERO);
    world.fail.store(true, Ordering::SeqCst);
    let failure = pool.run(job("a", "{}")).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::ImageUnavailable);
    eventually("the refill failure is reported", || {
        pool.status().pool.unwrap().last_error.as_deref() == Some("the fake image is missing")
    })
    .await;
    world.fail.store(false, Ordering::SeqCst);
    let output = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(
        output.start_kind,
        StartKind::Cold,
        "backing off, the pool is still empty"
    );
    pool.shutdown().await;
}

#[tokio::test]
async fn warm_runners_serve_their_key_and_the_least_recently_used_goes_first() {
    let (pool, world) = pool_with(
        ExecutionConfig {
            warm_max_containers: 2,
            warm_max_per_key: 1,
            ..config(ExecutionMode::Warm, 0)
        },
        Duration::ZERO,
    );
    let a = pool.run(job("a", "{}")).await.unwrap();
    let a2 = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!((a.start_kind, a2.start_kind), (StartKind::Cold, StartKind::Warm));
    assert_eq!(who(&a2), (who(&a).0, 2), "the same runner, its state kept");
    let b = pool.run(job("b", "{}")).await.unwrap();
    assert_eq!(b.start_kind, StartKind::Cold, "another key never gets a's runner");
    // a is the least recently used: c evicts it.
    pool.run(job("c", "{}")).await.unwrap();
    assert_eq!(pool.status().pool.unwrap().evictions, 1);
    assert_eq!(pool.run(job("b", "{}")).await.unwrap().start_kind, StartKind::Warm);
    let again = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(again.start_kind, StartKind::Cold, "the evicted runner is gone");
    assert_ne!(who(&again).0, who(&a).0);
    eventually("two warm runners stay", || {
        pool.counts().warm_idle == 2 && world.alive.load(Ordering::SeqCst) == 2
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test]
async fn idle_warm_runners_expire_after_the_ttl() {
    let (pool, world) = pool_with(
        ExecutionConfig {
            warm_idle_ttl: Duration::from_millis(100),
            ..config(ExecutionMode::Warm, 0)
        },
        Duration::ZERO,
    );
    let first = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(pool.counts().warm_idle, 1);
    eventually("the idle runner expires", || {
        pool.counts().warm_idle == 0 && world.alive.load(Ordering::SeqCst) == 0
    })
    .await;
    let next = pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(next.start_kind, StartKind::Cold);
    assert_ne!(who(&next).0, who(&first).0);
    assert!(pool.status().pool.unwrap().evictions >= 1);
    pool.shutdown().await;
}

#[tokio::test]
async fn a_runner_that_failed_or_broke_the_protocol_is_never_reused() {
    let (pool, world) = pool_with(config(ExecutionMode::Warm, 0), Duration::ZERO);
    let cases: [(&str, Option<ErrorCode>, &str); 5] = [
        (r#"{"bad_frame":true}"#, Some(ErrorCode::Internal), "broke the protocol"),
        (
            r#"{"oversized":true}"#,
            Some(ErrorCode::Internal),
            "sent a frame of more than",
        ),
        (
            r#"{"crash":true}"#,
            Some(ErrorCode::ExitedWithoutOutput),
            "exited without",
        ),
        (r#"{"hang":true}"#, Some(ErrorCode::Timeout), "timed out"),
        (r#"{"taint":true}"#, None, ""),
    ];
    for (input, code, message) in cases {
        let clean = pool.run(job("a", "{}")).await.unwrap();
        let mut bad = job("a", input);
        bad.timeout = Duration::from_millis(300);
        let outcome = pool.run(bad).await;
        let kind = match (&outcome, code) {
            (Err(failure), Some(code)) => {
                assert_eq!(failure.code, code, "{input}: {}", failure.message);
                assert!(failure.message.contains(message), "{input}: {}", failure.message);
                failure.start_kind
            }
            (Ok(output), None) => output.start_kind,
            other => panic!("{input}: {other:?}"),
        };
        assert_eq!(kind, StartKind::Warm, "{input}: the clean run's runner took it");
        let next = pool.run(job("a", "{}")).await.unwrap();
        assert_eq!(next.start_kind, StartKind::Cold, "{input}: never reused");
        assert_ne!(who(&next).0, who(&clean).0, "{input}");
        // The broken runner is destroyed, not only set aside.
        eventually("the broken runner is destroyed", || {
            world.alive.load(Ordering::SeqCst) == 1 && pool.counts().warm_live == 1
        })
        .await;
    }
    pool.shutdown().await;
}

#[tokio::test]
async fn runners_that_ended_while_idle_are_replaced_never_handed_a_job() {
    // A Docker daemon restart or an external `docker rm -f`: the streams of
    // idle runners end.
    let (pool, world) = pool_with(config(ExecutionMode::Warm, 2), Duration::ZERO);
    let warm = pool.run(job("a", "{}")).await.unwrap();
    eventually("the pool fills", || pool.counts().prewarm_idle == 2).await;
    world.end_all();
    let next = pool.run(job("a", "{}")).await.unwrap();
    assert_ne!(next.start_kind, StartKind::Warm);
    assert_ne!(who(&next).0, who(&warm).0);
    assert_eq!(who(&next).1, 1, "a fresh runner");
    // What ended is discarded and the pool refills with live runners.
    eventually("the pool refills", || {
        let c = pool.counts();
        c.prewarm_idle == 2 && world.alive.load(Ordering::SeqCst) == 2 + c.warm_idle
    })
    .await;
    assert_eq!(pool.run(job("b", "{}")).await.unwrap().start_kind, StartKind::Prewarm);
    pool.shutdown().await;
}

#[tokio::test]
async fn busy_warm_runners_count_against_the_caps() {
    let (pool, world) = pool_with(
        ExecutionConfig {
            warm_max_containers: 2,
            warm_max_per_key: 2,
            ..config(ExecutionMode::Warm, 0)
        },
        Duration::ZERO,
    );
    let pool = Arc::new(pool);
    // Two warm runners of key a.
    let slow = || job("a", r#"{"wait_ms":300}"#);
    let (x, y) = tokio::join!(pool.run(slow()), pool.run(slow()));
    assert_eq!(
        (x.unwrap().start_kind, y.unwrap().start_kind),
        (StartKind::Cold, StartKind::Cold)
    );
    assert_eq!(pool.counts().warm_idle, 2);
    // Both busy with a again; b runs meanwhile and ends first.
    let busy = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let (x, y) = tokio::join!(pool.run(slow()), pool.run(slow()));
            (x.unwrap().start_kind, y.unwrap().start_kind)
        })
    };
    eventually("both warm runners are busy", || {
        pool.status().pool.unwrap().warm_busy == 2
    })
    .await;
    let b = pool.run(job("b", "{}")).await.unwrap();
    assert_eq!(b.start_kind, StartKind::Cold);
    let c = pool.counts();
    assert_eq!(
        (c.warm_live, c.warm_idle),
        (2, 0),
        "b was not kept: the cap counts busy runners"
    );
    assert_eq!(busy.await.unwrap(), (StartKind::Warm, StartKind::Warm));
    assert_eq!(pool.run(job("b", "{}")).await.unwrap().start_kind, StartKind::Cold);
    eventually("b's runners are destroyed", || world.alive.load(Ordering::SeqCst) == 2).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn a_dropped_run_gives_its_warm_place_back() {
    let (pool, world) = pool_with(config(ExecutionMode::Warm, 0), Duration::ZERO);
    pool.run(job("a", "{}")).await.unwrap();
    assert_eq!(pool.counts().warm_live, 1);
    {
        let mut run = Box::pin(pool.run(job("a", r#"{"hang":true}"#)));
        tokio::select! {
            outcome = &mut run => panic!("a hanging run ended: {outcome:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        assert_eq!(pool.status().pool.unwrap().warm_busy, 1);
    }
    let c = pool.counts();
    assert_eq!((c.warm_live, c.warm_idle), (0, 0));
    eventually("the dropped run's runner is gone", || {
        world.alive.load(Ordering::SeqCst) == 0
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_hold_under_concurrent_load() {
    let config = ExecutionConfig {
        warm_max_containers: 3,
        warm_max_per_key: 2,
        ..config(ExecutionMode::Warm, 2)
    };
    let clients = 8;
    let (pool, world) = pool_with(config.clone(), Duration::from_millis(2));
    let pool = Arc::new(pool);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (pool, world, done, config) = (Arc::clone(&pool), Arc::clone(&world), Arc::clone(&done), config.clone());
        tokio::spawn(async move {
            let mut samples = 0u64;
            while !done.load(Ordering::SeqCst) {
                let before = pool.counts().removals_started;
                let c = pool.counts();
                let alive = world.alive.load(Ordering::SeqCst);
                let after = pool.counts().removals_started;
                check_caps(c, alive, after - before, &config, clients);
                samples += 1;
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            samples
        })
    };
    let runs = (0..clients).map(|client| {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            let mut kinds = Vec::new();
            for i in 0..25 {
                let input = format!(r#"{{"wait_ms":{}}}"#, (client * 7 + i * 3) % 11);
                let output = pool.run(job(&format!("k{}", (client + i) % 5), &input)).await.unwrap();
                kinds.push(output.start_kind);
            }
            kinds
        })
    });
    let mut kinds = Vec::new();
    for run in futures_util::future::join_all(runs).await {
        kinds.extend(run.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    assert!(sampler.await.unwrap() > 0);
    assert!(kinds.contains(&StartKind::Warm), "warm runners were reused: {kinds:?}");
    let status = pool.status().pool.unwrap();
    assert_eq!(status.hits + status.misses, 200);
    pool.shutdown().await;
    eventually("shutdown leaves nothing", || world.alive.load(Ordering::SeqCst) == 0).await;
}
