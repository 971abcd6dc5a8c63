//! Tests of the settings loader: defaults, layers, and errors naming their variable.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults() {
    let s = Settings::from_vars(vars(&[])).unwrap();
    assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(s.worker_listen.port(), 9090);
    assert_eq!(
        s.storage,
        StorageSettings::Files {
            data_dir: "data".into()
        }
    );
    assert_eq!(s.runtime.kind, RuntimeKind::Docker);
    assert_eq!(s.runtime.node_docker_image, "node:22-alpine");
    assert_eq!(s.limits, Limits::default());
    assert_eq!(s.max_body_bytes, 6 * 1024 * 1024);
    assert!(!s.logs.enabled);
    assert!(s.instance_id(s.listen).ends_with("-8080"));
    assert!(s.instance_id(s.worker_listen).ends_with("-9090"));
}

#[test]
fn env_overrides_and_bools() {
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_LISTEN", "127.0.0.1:0"),
        ("LOWCODE_FAAS_RUNTIME", "process"),
        ("LOWCODE_FAAS_FUNCTION_LOGS", "YES"),
        ("LOWCODE_FAAS_MAX_QUEUED_RUNS", "0"),
        ("LOWCODE_FAAS_API_TOKEN", "s3cret"),
    ]))
    .unwrap();
    assert_eq!(s.listen.port(), 0);
    assert_eq!(s.runtime.kind, RuntimeKind::Process);
    assert!(s.logs.enabled);
    assert_eq!(s.limits.max_queued_runs, 0);
    assert!(!format!("{s:?}").contains("s3cret"), "secrets never in Debug");
}

fn check_error(pairs: &[(&str, &str)], names: &str) {
    let err = Settings::from_vars(vars(pairs)).unwrap_err().to_string();
    assert!(err.contains(names), "error {err:?} should name {names}");
}

#[test]
fn bad_values_name_their_variable() {
    check_error(&[("LOWCODE_FAAS_FUNCTION_LOGS", "maybe")], "LOWCODE_FAAS_FUNCTION_LOGS");
    check_error(&[("LOWCODE_FAAS_LISTEN", "nope")], "LOWCODE_FAAS_LISTEN");
    check_error(&[("LOWCODE_FAAS_STORAGE", "mongo")], "LOWCODE_FAAS_STORAGE");
    check_error(&[("LOWCODE_FAAS_RUNTIME", "wasm")], "LOWCODE_FAAS_RUNTIME");
    check_error(
        &[("LOWCODE_FAAS_MAX_CONCURRENT_RUNS", "0")],
        "LOWCODE_FAAS_MAX_CONCURRENT_RUNS",
    );
    check_error(&[("LOWCODE_FAAS_MAX_BODY_BYTES", "-1")], "LOWCODE_FAAS_MAX_BODY_BYTES");
    check_error(&[("LOWCODE_FAAS_STORAGE", "db_s3")], "LOWCODE_FAAS_POSTGRES_DSN");
    check_error(
        &[
            ("LOWCODE_FAAS_STORAGE", "db_s3"),
            ("LOWCODE_FAAS_POSTGRES_DSN", "postgres://x"),
        ],
        "LOWCODE_FAAS_S3_BUCKET",
    );
    check_error(
        &[
            ("LOWCODE_FAAS_STORAGE", "db_s3"),
            ("LOWCODE_FAAS_POSTGRES_DSN", "postgres://x"),
            ("LOWCODE_FAAS_S3_BUCKET", "b"),
            ("LOWCODE_FAAS_S3_ACCESS_KEY", "a"),
        ],
        "LOWCODE_FAAS_S3_SECRET_KEY",
    );
    check_error(
        &[("LOWCODE_FAAS_CONFIG", "/nonexistent/faas.toml")],
        "LOWCODE_FAAS_CONFIG",
    );
    // Checked by the adapters' own config types, reported at load time.
    check_error(
        &[
            ("LOWCODE_FAAS_STORAGE", "db_s3"),
            ("LOWCODE_FAAS_POSTGRES_DSN", "mysql://x"),
            ("LOWCODE_FAAS_S3_BUCKET", "b"),
        ],
        "LOWCODE_FAAS_POSTGRES_DSN",
    );
    check_error(
        &[("LOWCODE_FAAS_LOG_LOKI_URL", "ftp://loki")],
        "LOWCODE_FAAS_LOG_LOKI_URL",
    );
}

#[test]
fn toml_file_is_below_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faas.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7000\"\nmax_concurrent_runs = 4\nfunction_logs = true\n",
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let s = Settings::from_vars(vars(&[("LOWCODE_FAAS_CONFIG", &path)])).unwrap();
    assert_eq!(s.listen.port(), 7000);
    assert_eq!(s.limits.max_concurrent_runs, 4);
    assert!(s.logs.enabled);
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_CONFIG", &path),
        ("LOWCODE_FAAS_LISTEN", "127.0.0.1:7001"),
    ]))
    .unwrap();
    assert_eq!(s.listen.port(), 7001, "env wins over the file");
}

#[test]
fn toml_type_errors_and_unknown_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faas.toml");
    let path = file.to_string_lossy().to_string();
    std::fs::write(&file, "max_concurrent_runs = [4]\n").unwrap();
    check_error(&[("LOWCODE_FAAS_CONFIG", &path)], "LOWCODE_FAAS_MAX_CONCURRENT_RUNS");
    std::fs::write(&file, "max_concurent_runs = 4\n").unwrap();
    check_error(&[("LOWCODE_FAAS_CONFIG", &path)], "max_concurent_runs");
    std::fs::write(&file, "container_user = \"1000:1000\"\ncontainer_cpus = 0.5\n").unwrap();
    let s = Settings::from_vars(vars(&[("LOWCODE_FAAS_CONFIG", &path)])).unwrap();
    assert_eq!(s.runtime.container_cpus, 0.5);
}

#[test]
fn unknown_variables_are_named_with_the_nearest_known_one() {
    let found = unknown_variables([
        "LOWCODE_FAAS_RUNTIMES",
        "LOWCODE_FAAS_RUNTIME",
        "LOWCODE_FAAS_MAX_CONCURENT_RUNS",
        "LOWCODE_FAAS_SOMETHING_ELSE_ENTIRELY",
        "LOWCODE_FAAS_TEST_POSTGRES_DSN",
        "LOWCODE_FAAS_CONFIG",
        "LOWCODE_FAAS_WARM_MAX_PER_KEY",
        "PATH",
    ]);
    let got: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|u| (u.name.as_str(), u.did_you_mean.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "LOWCODE_FAAS_MAX_CONCURENT_RUNS",
                Some("LOWCODE_FAAS_MAX_CONCURRENT_RUNS")
            ),
            ("LOWCODE_FAAS_RUNTIMES", Some("LOWCODE_FAAS_RUNTIME")),
            ("LOWCODE_FAAS_SOMETHING_ELSE_ENTIRELY", None),
        ]
    );
}

#[test]
fn listen_forms() {
    assert_eq!(parse_listen(":80"), Some("0.0.0.0:80".parse().unwrap()));
    assert_eq!(parse_listen("[::1]:80"), Some("[::1]:80".parse().unwrap()));
    assert_eq!(parse_listen("localhost:1"), Some("127.0.0.1:1".parse().unwrap()));
    assert_eq!(parse_listen("x"), None);
}

#[test]
fn worker_url_lists() {
    let s = Settings::from_vars(vars(&[(
        "LOWCODE_FAAS_WORKER_URL",
        " http://10.0.0.1:9090/, https://w.example , http://[::1]:9090,http://w.ns.svc.cluster.local:9090,http://10.0.0.1:9090",
    )]))
    .unwrap();
    assert_eq!(
        s.worker_urls,
        [
            "http://10.0.0.1:9090",
            "https://w.example",
            "http://[::1]:9090",
            "http://w.ns.svc.cluster.local:9090"
        ]
    );
    assert_eq!(s.worker_dns_refresh, Duration::from_secs(10));
    assert_eq!(s.worker_health_interval, Duration::from_secs(2));
    assert!(Settings::from_vars(vars(&[])).unwrap().worker_urls.is_empty());
    for bad in [
        ",",
        "10.0.0.1:9090",
        "ftp://w:9090",
        "http://w:9090/v1",
        "http://w:9090?x=1",
        "http://w:9090#f",
        "http://user@w:9090",
        "http://",
        "http://:9090",
        "http://w:port",
        "http://w:70000",
        "http://[::1:9090",
        "http://a:1,https://b/c",
    ] {
        check_error(&[("LOWCODE_FAAS_WORKER_URL", bad)], "LOWCODE_FAAS_WORKER_URL");
    }
    check_error(
        &[("LOWCODE_FAAS_WORKER_DNS_REFRESH_MS", "0")],
        "LOWCODE_FAAS_WORKER_DNS_REFRESH_MS",
    );
    check_error(
        &[("LOWCODE_FAAS_WORKER_HEALTH_INTERVAL_MS", "x")],
        "LOWCODE_FAAS_WORKER_HEALTH_INTERVAL_MS",
    );
}

#[test]
fn playground_and_cors_settings() {
    let s = Settings::from_vars(vars(&[])).unwrap();
    assert!(s.ui, "the playground is on by default");
    assert!(s.cors_origins.is_empty(), "CORS is off by default");
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_UI", "false"),
        ("LOWCODE_FAAS_CORS_ORIGINS", "https://a.example, http://localhost:3000"),
    ]))
    .unwrap();
    assert!(!s.ui);
    assert_eq!(s.cors_origins, ["https://a.example", "http://localhost:3000"]);
    check_error(&[("LOWCODE_FAAS_UI", "maybe")], "LOWCODE_FAAS_UI");
    check_error(&[("LOWCODE_FAAS_CORS_ORIGINS", "*")], "LOWCODE_FAAS_CORS_ORIGINS");
}

#[test]
fn durations_are_capped_at_a_day() {
    for key in [
        "LOWCODE_FAAS_INVOKE_MAX_TIMEOUT_MS",
        "LOWCODE_FAAS_INVOKE_DEFAULT_TIMEOUT_MS",
        "LOWCODE_FAAS_SHUTDOWN_GRACE_MS",
        "LOWCODE_FAAS_STORAGE_TIMEOUT_MS",
    ] {
        check_error(&[(key, "86400001")], key);
    }
    let s = Settings::from_vars(vars(&[("LOWCODE_FAAS_INVOKE_MAX_TIMEOUT_MS", "86400000")])).unwrap();
    assert_eq!(s.limits.max_timeout, Duration::from_secs(86_400));
}

#[test]
fn log_sinks_of_the_go_version_and_their_bounds() {
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", "ES"),
        ("LOWCODE_FAAS_LOG_ES_URL", "https://es.internal:9200/"),
        ("LOWCODE_FAAS_LOG_ES_USER", "elastic"),
        ("LOWCODE_FAAS_LOG_ES_PASSWORD", " pass word "),
        ("LOWCODE_FAAS_LOG_HTTP_URL", "http://hooks.internal/logs"),
        ("LOWCODE_FAAS_LOG_HTTP_HEADER", "Authorization: Bearer t0ken"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_QUEUE", "20"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES", "4096"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_BUFFER_BYTES", "8192"),
        ("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "250"),
        ("HTTPS_PROXY", "http://user:proxypw@127.0.0.9:3128"),
        ("no_proxy", "127.0.0.1,.internal"),
    ]))
    .unwrap();
    assert_eq!(s.logs.sink, LogSinkKind::Elasticsearch);
    let es = s.logs.es.clone().unwrap();
    assert_eq!(es.index, "lowcode-faas-logs", "the Go default index");
    assert_eq!(es.user.as_deref(), Some("elastic"));
    assert_eq!(
        es.password.as_deref(),
        Some(" pass word "),
        "a password is taken as set"
    );
    assert_eq!(es.queue.max_entries, 20);
    assert_eq!(es.queue.max_bytes, 4096);
    assert_eq!(es.batch.wait, Duration::from_millis(250));
    assert_eq!(es.proxy, s.proxy);
    assert_eq!(s.logs.buffer_bytes, 8192);
    assert_eq!(
        s.logs.http.as_ref().unwrap().header.as_ref().unwrap().name(),
        "authorization"
    );
    assert_eq!(s.proxy.https.as_deref(), Some("http://user:proxypw@127.0.0.9:3128"));
    assert_eq!(s.proxy.no_proxy.as_deref(), Some("127.0.0.1,.internal"));
    let debug = format!("{s:?}");
    for secret in ["pass word", "t0ken", "proxypw"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    for (spelling, kind) in [
        ("elasticsearch", LogSinkKind::Elasticsearch),
        ("http", LogSinkKind::Http),
        ("webhook", LogSinkKind::Http),
    ] {
        let s = Settings::from_vars(vars(&[
            ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", spelling),
            ("LOWCODE_FAAS_LOG_ES_URL", "http://es:9200"),
            ("LOWCODE_FAAS_LOG_HTTP_URL", "http://hook"),
        ]))
        .unwrap();
        assert_eq!(s.logs.sink, kind);
    }
    let d = Settings::from_vars(vars(&[])).unwrap();
    assert_eq!(d.logs.queue, QueueLimits::default());
    assert_eq!(d.logs.buffer_bytes, 64 * 1024 * 1024);
    assert_eq!(d.proxy, OutboundProxy::none());
}

#[test]
fn log_sink_errors_name_the_variable_and_never_the_secret() {
    for sink in ["es", "webhook"] {
        let err = Settings::from_vars(vars(&[
            ("LOWCODE_FAAS_FUNCTION_LOGS", "true"),
            ("LOWCODE_FAAS_FUNCTION_LOGS_SINK", sink),
        ]))
        .unwrap_err()
        .to_string();
        let variable = if sink == "es" {
            "LOWCODE_FAAS_LOG_ES_URL"
        } else {
            "LOWCODE_FAAS_LOG_HTTP_URL"
        };
        assert!(err.contains(variable), "{err}");
    }
    check_error(&[("LOWCODE_FAAS_LOG_ES_URL", "es:9200")], "LOWCODE_FAAS_LOG_ES_URL");
    check_error(
        &[
            ("LOWCODE_FAAS_LOG_ES_URL", "http://es"),
            ("LOWCODE_FAAS_LOG_ES_INDEX", "Bad Index"),
        ],
        "LOWCODE_FAAS_LOG_ES_INDEX",
    );
    check_error(
        &[("LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES", "0")],
        "LOWCODE_FAAS_FUNCTION_LOGS_QUEUE_BYTES",
    );
    check_error(
        &[("LOWCODE_FAAS_FUNCTION_LOGS_BUFFER_BYTES", "x")],
        "LOWCODE_FAAS_FUNCTION_LOGS_BUFFER_BYTES",
    );
    check_error(
        &[("LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS", "0")],
        "LOWCODE_FAAS_FUNCTION_LOGS_BATCH_WAIT_MS",
    );
    let err = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_LOG_HTTP_URL", "http://hook"),
        ("LOWCODE_FAAS_LOG_HTTP_HEADER", "Bearer-only-s3cret"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("LOWCODE_FAAS_LOG_HTTP_HEADER") && !err.contains("s3cret"),
        "{err}"
    );
    let err = Settings::from_vars(vars(&[("HTTP_PROXY", "http://u:pw123@[::1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP_PROXY") && !err.contains("pw123"), "{err}");
}

#[test]
fn secrets_settings() {
    let s = Settings::from_vars(vars(&[])).unwrap();
    assert!(!s.redact_env && !s.allow_unauthenticated && !s.env_encryption.enabled());
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let old = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_REDACT_ENV", "true"),
        ("LOWCODE_FAAS_ALLOW_UNAUTHENTICATED", "1"),
        ("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", key),
        ("LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS", &format!("{old}, ")),
    ]))
    .unwrap();
    assert!(s.redact_env && s.allow_unauthenticated && s.env_encryption.enabled());
    assert_eq!(s.env_encryption.previous_keys, vec![old.to_owned()]);
    let debug = format!("{s:?}");
    assert!(!debug.contains(key) && !debug.contains(old), "keys never in Debug");
    check_error(&[("LOWCODE_FAAS_REDACT_ENV", "maybe")], "LOWCODE_FAAS_REDACT_ENV");
    let err = Settings::from_vars(vars(&[("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", "c2hvcnQ=")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LOWCODE_FAAS_ENV_ENCRYPTION_KEY") && !err.contains("c2hvcnQ="),
        "{err}"
    );
    check_error(
        &[
            ("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", key),
            ("LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS", "nope"),
        ],
        "LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS",
    );
}

#[test]
fn connection_limits_are_settings() {
    let s = Settings::from_vars(vars(&[])).unwrap();
    assert_eq!(s.connection_limits, crate::serve::ConnectionLimits::default());
    assert_eq!(s.connection_limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.connection_limits.idle_timeout, Duration::from_secs(30));
    assert_eq!(s.connection_limits.max_connections, 512);
    let s = Settings::from_vars(vars(&[
        ("LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "1500"),
        ("LOWCODE_FAAS_IDLE_TIMEOUT_MS", "2500"),
        ("LOWCODE_FAAS_MAX_CONNECTIONS", "7"),
    ]))
    .unwrap();
    assert_eq!(s.connection_limits.header_read_timeout, Duration::from_millis(1500));
    assert_eq!(s.connection_limits.idle_timeout, Duration::from_millis(2500));
    assert_eq!(s.connection_limits.max_connections, 7);
    for key in ["LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS", "LOWCODE_FAAS_IDLE_TIMEOUT_MS"] {
        check_error(&[(key, "0")], key);
        check_error(&[(key, "86400001")], key);
        check_error(&[(key, "soon")], key);
    }
    check_error(&[("LOWCODE_FAAS_MAX_CONNECTIONS", "0")], "LOWCODE_FAAS_MAX_CONNECTIONS");
    check_error(
        &[("LOWCODE_FAAS_MAX_CONNECTIONS", "1048577")],
        "LOWCODE_FAAS_MAX_CONNECTIONS",
    );
}
