//! What `db_s3` costs per invoke (queries, S3 GETs, the revision query).

use super::*;

/// What `db_s3` costs per invoke, measured against a real PostgreSQL and S3.
#[derive(Debug)]
pub(crate) struct DbS3Costs {
    pub(crate) depth: usize,
    pub(crate) invokes: usize,
    pub(crate) hit_queries: f64,
    pub(crate) hit_gets: f64,
    pub(crate) miss_queries: f64,
    pub(crate) miss_gets: f64,
    pub(crate) misses: usize,
    pub(crate) revision: Series,
    pub(crate) revision_load: f64,
}

/// PostgreSQL transactions (every query of ours is its own autocommit
/// transaction) and S3 GETs (counted by a proxy in front of the S3 server)
/// per invoke, with the function cache hit and missed; and the revision
/// query's latency while 8 clients invoke.
pub(crate) async fn db_s3_costs(client: &reqwest::Client, invokes: usize, seconds: f64) -> DbS3Costs {
    use sqlx::{Connection, Row};
    // A fresh database and S3 prefix, as the black-box suite makes them.
    std::env::set_var("FAAS_TESTS_STORAGE", "db_s3");
    let storage = faas_tests::storage_vars().await;
    let var = |name: &str| storage.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    let dsn = var("LOWCODE_FAAS_POSTGRES_DSN");
    let s3: std::net::SocketAddr = var("LOWCODE_FAAS_S3_ENDPOINT")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (proxy, gets) = faas_tests::bench_support::counting_get_proxy(s3).await;
    let mut vars: Vec<(&str, String)> = storage
        .iter()
        .filter(|(k, _)| k != "LOWCODE_FAAS_S3_ENDPOINT")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    vars.push(("LOWCODE_FAAS_S3_ENDPOINT", format!("http://{proxy}")));
    vars.push(("LOWCODE_FAAS_RUNTIME", "process".into()));
    vars.push(("LOWCODE_FAAS_EXECUTION_MODE", "warm".into()));
    let mut server = Server::start("faas-server", "LOWCODE_FAAS_LISTEN", &vars, None).await;
    let res = client
        .post(format!("{}/collections", server.base))
        .json(&json!({"path": "a/b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let misses = 20;
    for i in 0..=misses {
        let name = if i == 0 {
            "hello".to_string()
        } else {
            format!("miss{i}")
        };
        let res = client
            .post(format!("{}/collections/a/b/functions", server.base))
            .json(&json!({"name": name, "source_code": HELLO}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
    let url = format!("{}/collections/a/b/functions/hello/invoke", server.base);
    let body = json!({"input": {"name": "bench"}});
    for _ in 0..5 {
        invoke(client, &url, &body).await;
    }
    let mut db = sqlx::PgConnection::connect(&dsn).await.unwrap();
    let count = |row: sqlx::postgres::PgRow| row.get::<i64, _>(0);
    let query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()";
    // Busy backends flush their counters after a second, idle ones within
    // ten (PostgreSQL 15): wait for both flushes around each series.
    let flush = || tokio::time::sleep(Duration::from_millis(11_000));
    let mut measure = async |urls: Vec<String>| {
        flush().await;
        let before = count(sqlx::query(query).fetch_one(&mut db).await.unwrap());
        let gets_before = gets.load(std::sync::atomic::Ordering::Relaxed);
        for url in &urls {
            invoke(client, url, &body).await;
        }
        let gets_after = gets.load(std::sync::atomic::Ordering::Relaxed);
        flush().await;
        let after = count(sqlx::query(query).fetch_one(&mut db).await.unwrap());
        // Our own first read is one transaction of the difference.
        (
            (after - before - 1) as f64 / urls.len() as f64,
            (gets_after - gets_before) as f64 / urls.len() as f64,
        )
    };
    let (hit_queries, hit_gets) = measure(vec![url.clone(); invokes]).await;
    // A save fills the function cache: restart the dispatcher so that the
    // first invoke of each other function is a real miss.
    server.terminate();
    server.spawn().await;
    let miss_urls = (1..=misses)
        .map(|i| format!("{}/collections/a/b/functions/miss{i}/invoke", server.base))
        .collect();
    let (miss_queries, miss_gets) = measure(miss_urls).await;

    // The revision query, timed on its own connection while 8 clients invoke.
    let revision_sql = "SELECT version, id FROM function_versions WHERE collection_path = $1 AND function_name = $2 ORDER BY version DESC LIMIT 1";
    let load = tokio::spawn({
        let url = url.clone();
        async move { faas_tests::bench_support::throughput(&url, json!({"input": {"name": "bench"}}), 8, seconds).await }
    });
    let mut samples = Vec::new();
    while !load.is_finished() {
        let started = Instant::now();
        sqlx::query(revision_sql)
            .bind("a/b")
            .bind("hello")
            .fetch_optional(&mut db)
            .await
            .unwrap();
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let revision_load = load.await.unwrap();
    server.stop();
    DbS3Costs {
        depth: 2,
        invokes,
        hit_queries,
        hit_gets,
        miss_queries,
        miss_gets,
        misses,
        revision: Series::from(samples),
        revision_load,
    }
}
