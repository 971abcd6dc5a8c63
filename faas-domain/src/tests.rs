//! Use-case tests with mockall mocks of the ports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_ports::{
    CollectionPath, Deployment, EnvMap, ErrorCode, FunctionName, Language, MockContainerRuntime, MockLogSink,
    MockSourceFetcher, MockSourceStore, PortError, RunFailure, RunJob, RunOutput, RunStatus, SourceUrl, StartKind,
    Version,
};
use serde_json::json;

use crate::{CreateFunction, Engine, InvokeRequest, Limits, RunInput, SourceSpec, UpdateFunction};

fn path(p: &str) -> CollectionPath {
    CollectionPath::parse(p).unwrap()
}

fn name(n: &str) -> FunctionName {
    FunctionName::parse(n).unwrap()
}

fn env(v: serde_json::Value) -> EnvMap {
    EnvMap::from_json(&v).unwrap()
}

fn deployment(cp: &str, n: &str, version: u64, fn_env: serde_json::Value) -> Deployment {
    Deployment {
        collection_path: path(cp),
        name: name(n),
        language: Language::Javascript,
        source_code: "export async function handler(){return {ok:true}}".into(),
        env: env(fn_env),
        version: Version::new(version).unwrap(),
        created_at: chrono::Utc::now(),
    }
}

fn success_output() -> RunOutput {
    RunOutput {
        output_json: serde_json::to_vec(&json!({"type": "result", "value": {"ok": true, "data": 1}})).unwrap(),
        logs: b"{\"ts\":\"t\",\"level\":\"info\",\"message\":\"hi 1\"}\n".to_vec(),
        start_kind: StartKind::Prewarm,
    }
}

/// A store where collections `a` and `a/b` exist with env, holding function `a/b/f` v3.
fn store_with_function() -> MockSourceStore {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    store.expect_collection_env().returning(|p| {
        Ok(match p.as_str() {
            "" => env(json!({"A": "root", "R": "root"})),
            "a" => env(json!({"A": "a", "B": "a"})),
            "a/b" => env(json!({"A": "ab", "C": "ab"})),
            other => panic!("unexpected collection {other}"),
        })
    });
    store
        .expect_get_function()
        .returning(|cp, n, _| Ok(deployment(cp.as_str(), n.as_str(), 3, json!({"A": "fn", "F": "fn"}))));
    store
}

fn invoke_request(env_json: serde_json::Value) -> InvokeRequest {
    InvokeRequest {
        collection_path: path("a/b"),
        name: name("f"),
        input: RunInput::parse(Some(json!({"x": 1}))).unwrap(),
        timeout: Some(Duration::from_secs(5)),
        env: env(env_json),
        version: None,
        include_logs: false,
    }
}

fn engine(store: MockSourceStore, runtime: MockContainerRuntime) -> Engine {
    Engine::builder(Arc::new(store), Arc::new(runtime)).build()
}

#[tokio::test]
async fn invoke_merges_env_in_precedence_order_and_sets_platform_vars() {
    let seen: Arc<Mutex<Option<RunJob>>> = Arc::default();
    let mut runtime = MockContainerRuntime::new();
    let seen2 = Arc::clone(&seen);
    runtime.expect_run().times(1).returning(move |job| {
        *seen2.lock().unwrap() = Some(job);
        Ok(success_output())
    });
    let engine = engine(store_with_function(), runtime);
    let result = engine
        .invoke(invoke_request(json!({"Q": "req", "F": "req"})))
        .await
        .unwrap();

    assert_eq!(result.status, RunStatus::Success);
    assert_eq!(result.output, json!({"ok": true, "data": 1}));
    assert_eq!(result.deployment_id, "a/b/f@v3");
    assert_eq!(result.function_id, "a/b/f");
    assert_eq!(result.collection_path.as_deref(), Some("a/b"));

    let job = seen.lock().unwrap().take().unwrap();
    let e = &job.env;
    assert_eq!(e["A"], "fn", "function env beats every collection");
    assert_eq!(e["B"], "a");
    assert_eq!(e["C"], "ab");
    assert_eq!(e["R"], "root");
    assert_eq!(e["F"], "req", "request env beats function env");
    assert_eq!(e["Q"], "req");
    assert_eq!(e["LOWCODE_FAAS_RUN_ID"], result.run_id);
    assert_eq!(e["LOWCODE_FAAS_EXECUTION_ID"], result.run_id);
    assert_eq!(e["LOWCODE_FAAS_FUNCTION_NAME"], "f");
    assert_eq!(e["LOWCODE_FAAS_COLLECTION_PATH"], "a/b");
    assert_eq!(e["LOWCODE_FAAS_DEPLOYMENT_ID"], "a/b/f@v3");
    assert_eq!(e["LOWCODE_FAAS_DEPLOYMENT_VERSION"], "3");
    assert_eq!(job.input_json, br#"{"x":1}"#.to_vec());
    assert_eq!(job.max_log_bytes, 0, "without a log sink no logs are asked for");
    assert!(job.timeout <= Duration::from_millis(5_000));
    assert_eq!(engine.stats().starts.prewarm, 1);
    assert_eq!(engine.stats().starts.cold, 0);
    assert_eq!(result.start_kind, StartKind::Prewarm);
    assert_eq!(engine.stats().in_flight, 0);
}

#[tokio::test]
async fn invoke_passes_the_pinned_version_to_the_store() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    store.expect_collection_env().returning(|_| Ok(EnvMap::new()));
    store
        .expect_get_function()
        .withf(|_, _, v| *v == Some(Version::new(2).unwrap()))
        .times(1)
        .returning(|cp, n, _| Ok(deployment(cp.as_str(), n.as_str(), 2, json!({}))));
    let mut runtime = MockContainerRuntime::new();
    runtime.expect_run().returning(|_| Ok(success_output()));
    let mut req = invoke_request(json!({}));
    req.version = Some(Version::new(2).unwrap());
    let result = engine(store, runtime).invoke(req).await.unwrap();
    assert_eq!(result.deployment_version, 2);
}

#[tokio::test]
async fn invoke_on_a_missing_collection_is_collection_not_found() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(false));
    let err = engine(store, MockContainerRuntime::new())
        .invoke(invoke_request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_FOUND");
}

#[tokio::test]
async fn storage_errors_surface_with_their_code() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    store
        .expect_get_function()
        .returning(|_, _, _| Err(PortError::storage_unavailable("down", std::io::Error::other("x"))));
    let err = engine(store, MockContainerRuntime::new())
        .invoke(invoke_request(json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE");
}

#[tokio::test]
async fn runtime_failures_become_failed_run_results() {
    let mut runtime = MockContainerRuntime::new();
    runtime.expect_run().returning(|_| {
        Err(RunFailure {
            start_kind: StartKind::Warm,
            ..RunFailure::new(ErrorCode::Timeout, "killed", vec![])
        })
    });
    let result = engine(store_with_function(), runtime)
        .invoke(invoke_request(json!({})))
        .await
        .unwrap();
    assert_eq!(result.status, RunStatus::Failed);
    assert_eq!(result.error_code, Some(ErrorCode::Timeout));
    assert_eq!(result.error_message, "function timed out after 5000 ms");
    assert_eq!(result.output["code"], "TIMEOUT");
    assert_eq!(result.http_status_code, 0);
    assert_eq!(result.start_kind, StartKind::Warm);
}

#[tokio::test]
async fn include_logs_asks_for_logs_without_a_sink_and_returns_them() {
    let mut runtime = MockContainerRuntime::new();
    runtime
        .expect_run()
        .withf(|job| job.max_log_bytes == Limits::default().max_log_bytes)
        .times(1)
        .returning(|_| Ok(success_output()));
    let result = engine(store_with_function(), runtime)
        .invoke(invoke_request(json!({})).with_logs())
        .await
        .unwrap();
    let logs = result.logs.expect("logs were asked for");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "hi 1");
    assert_eq!(logs[0].level, faas_ports::LogLevel::Info);
    assert_eq!(logs[0].stream, faas_ports::LogStream::Stdout);
    assert_eq!(logs[0].time, "t");
    assert_eq!(result.logs_truncated, Some(false));
}

#[tokio::test]
async fn include_logs_returns_the_logs_of_a_failed_run() {
    let mut runtime = MockContainerRuntime::new();
    runtime.expect_run().times(1).returning(|_| {
        Err(RunFailure::new(
            ErrorCode::Timeout,
            "killed",
            b"{\"ts\":\"t\",\"level\":\"error\",\"message\":\"before\"}\n".to_vec(),
        ))
    });
    let result = engine(store_with_function(), runtime)
        .invoke(invoke_request(json!({})).with_logs())
        .await
        .unwrap();
    assert_eq!(result.error_code, Some(ErrorCode::Timeout));
    let logs = result.logs.unwrap();
    assert_eq!(logs[0].stream, faas_ports::LogStream::Stderr);
    assert_eq!(logs[0].message, "before");
}

#[tokio::test]
async fn without_include_logs_the_result_has_no_log_fields() {
    let mut runtime = MockContainerRuntime::new();
    runtime.expect_run().returning(|_| Ok(success_output()));
    let result = engine(store_with_function(), runtime)
        .invoke(invoke_request(json!({})))
        .await
        .unwrap();
    assert!(result.logs.is_none() && result.logs_truncated.is_none());
    let v = serde_json::to_value(&result).unwrap();
    assert!(v.get("logs").is_none() && v.get("logs_truncated").is_none(), "{v}");
}

#[tokio::test]
async fn captured_logs_reach_the_sink_with_run_context() {
    let mut runtime = MockContainerRuntime::new();
    runtime.expect_run().returning(|_| Ok(success_output()));
    let mut sink = MockLogSink::new();
    sink.expect_emit()
        .withf(|entries| entries.len() == 1 && entries[0].message == "hi 1" && entries[0].deployment_id == "a/b/f@v3")
        .times(1)
        .returning(|_| Ok(()));
    let engine = Engine::builder(Arc::new(store_with_function()), Arc::new(runtime))
        .log_sink(Arc::new(sink))
        .build();
    engine.invoke(invoke_request(json!({}))).await.unwrap();
    assert_eq!(engine.limits().max_log_bytes, Limits::default().max_log_bytes);
}

#[test]
fn timeouts_resolve_against_the_limits() {
    let limits = Limits {
        default_timeout: Duration::from_millis(100),
        max_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let ms = Duration::from_millis;
    assert_eq!(limits.resolve_timeout(None).unwrap(), ms(100));
    assert_eq!(limits.resolve_timeout(Some(ms(1000))).unwrap(), ms(1000));
    assert_eq!(
        limits.resolve_timeout(Some(ms(1001))).unwrap_err().code(),
        "INVALID_TIMEOUT"
    );
}

#[test]
fn input_must_be_an_object() {
    assert!(RunInput::parse(None).unwrap().as_map().is_empty());
    assert!(RunInput::parse(Some(json!(null))).unwrap().as_map().is_empty());
    assert_eq!(RunInput::parse(Some(json!([1]))).unwrap_err().code(), "INVALID_INPUT");
    assert_eq!(RunInput::parse(Some(json!("x"))).unwrap_err().code(), "INVALID_INPUT");
}

#[test]
fn source_spec_rules() {
    let url = SourceUrl::parse("https://example.com/a.mjs").unwrap();
    assert_eq!(
        SourceSpec::exactly_one(None, None).unwrap_err().code(),
        "SOURCE_REQUIRED"
    );
    assert_eq!(
        SourceSpec::exactly_one(Some("x".into()), Some(url.clone()))
            .unwrap_err()
            .code(),
        "SOURCE_CONFLICT"
    );
    assert_eq!(SourceSpec::at_most_one(None, None).unwrap(), None);
    assert_eq!(
        SourceSpec::exactly_one(None, Some(url.clone())).unwrap(),
        SourceSpec::Url(url)
    );
}

#[test]
fn a_blank_source_code_next_to_a_url_counts_as_absent() {
    let url = SourceUrl::parse("https://example.com/a.mjs").unwrap();
    assert_eq!(
        SourceSpec::exactly_one(Some(" \n".into()), Some(url.clone())).unwrap(),
        SourceSpec::Url(url)
    );
    assert_eq!(
        SourceSpec::exactly_one(Some(" ".into()), None).unwrap(),
        SourceSpec::Code(" ".into())
    );
}

#[tokio::test]
async fn blank_sources_are_refused_before_writing() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    store
        .expect_get_function()
        .returning(|cp, n, _| Ok(deployment(cp.as_str(), n.as_str(), 1, json!({}))));
    // No save_function expectation: a call would fail the test.
    let mut fetcher = MockSourceFetcher::new();
    fetcher.expect_fetch().returning(|_, _| Ok(" \r\n\t".into()));
    let engine = Engine::builder(Arc::new(store), Arc::new(MockContainerRuntime::new()))
        .fetcher(Arc::new(fetcher))
        .build();
    for code in ["", "   ", "\n\t "] {
        let err = engine
            .create_function(CreateFunction::new(name("f"), SourceSpec::Code(code.into())))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "EMPTY_SOURCE", "{code:?}");
        let err = engine
            .update_function(UpdateFunction {
                collection_path: CollectionPath::root(),
                name: name("f"),
                source: Some(SourceSpec::Code(code.into())),
                env: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "EMPTY_SOURCE", "{code:?}");
    }
    let url = SourceUrl::parse("https://example.com/x.mjs").unwrap();
    let err = engine
        .pull_function(&CollectionPath::root(), &name("f"), &url)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "EMPTY_SOURCE");
}

#[tokio::test]
async fn create_refuses_oversized_source_before_writing() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    // No save_function expectation: a call would fail the test.
    let engine = Engine::builder(Arc::new(store), Arc::new(MockContainerRuntime::new()))
        .limits(Limits {
            max_source_bytes: 10,
            ..Limits::default()
        })
        .build();
    let err = engine
        .create_function(CreateFunction {
            collection_path: path("a"),
            name: name("f"),
            language: Language::Javascript,
            source: SourceSpec::Code("x".repeat(11)),
            env: EnvMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SOURCE_TOO_LARGE");
}

#[tokio::test]
async fn create_in_a_missing_collection_is_not_found_and_fetches_nothing() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(false));
    let fetcher = MockSourceFetcher::new();
    let engine = Engine::builder(Arc::new(store), Arc::new(MockContainerRuntime::new()))
        .fetcher(Arc::new(fetcher))
        .build();
    let err = engine
        .create_function(CreateFunction {
            collection_path: path("nope"),
            name: name("f"),
            language: Language::Javascript,
            source: SourceSpec::Url(SourceUrl::parse("https://example.com/x.mjs").unwrap()),
            env: EnvMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_FOUND");
}

#[tokio::test]
async fn create_from_url_saves_the_fetched_source() {
    let mut store = MockSourceStore::new();
    store.expect_save_function().times(1).returning(|new| {
        assert_eq!(new.source_code, "fetched");
        Ok(deployment("", new.name.as_str(), 1, json!({})))
    });
    let mut fetcher = MockSourceFetcher::new();
    fetcher
        .expect_fetch()
        .withf(|_, max| *max == Limits::default().max_source_bytes)
        .returning(|_, _| Ok("fetched".into()));
    let engine = Engine::builder(Arc::new(store), Arc::new(MockContainerRuntime::new()))
        .fetcher(Arc::new(fetcher))
        .build();
    let d = engine
        .create_function(CreateFunction {
            collection_path: CollectionPath::root(),
            name: name("f"),
            language: Language::Javascript,
            source: SourceSpec::Url(SourceUrl::parse("https://example.com/x.mjs").unwrap()),
            env: EnvMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(d.version, Version::FIRST);
}

#[tokio::test]
async fn update_keeps_source_and_env_unless_given() {
    let mut store = MockSourceStore::new();
    store.expect_collection_exists().returning(|_| Ok(true));
    store
        .expect_get_function()
        .returning(|cp, n, _| Ok(deployment(cp.as_str(), n.as_str(), 4, json!({"K": "v"}))));
    store.expect_save_function().times(2).returning(|new| {
        let mut d = deployment(new.collection_path.as_str(), new.name.as_str(), 5, json!({}));
        d.env = new.env.clone();
        d.source_code = new.source_code.clone();
        Ok(d)
    });
    let engine = engine(store, MockContainerRuntime::new());
    let kept = engine
        .update_function(UpdateFunction {
            collection_path: path("a"),
            name: name("f"),
            source: None,
            env: None,
        })
        .await
        .unwrap();
    assert_eq!(kept.env.get("K"), Some("v"));
    assert!(kept.source_code.contains("handler"));
    let cleared = engine
        .update_function(UpdateFunction {
            collection_path: path("a"),
            name: name("f"),
            source: Some(SourceSpec::Code("new".into())),
            env: Some(EnvMap::new()),
        })
        .await
        .unwrap();
    assert!(cleared.env.is_empty());
    assert_eq!(cleared.source_code, "new");
}

#[tokio::test]
async fn the_root_collection_cannot_be_created_or_deleted() {
    let engine = engine(MockSourceStore::new(), MockContainerRuntime::new());
    let root = CollectionPath::root();
    assert_eq!(
        engine
            .create_collection(&root, &EnvMap::new())
            .await
            .unwrap_err()
            .code(),
        "INVALID_COLLECTION_PATH"
    );
    assert_eq!(
        engine.delete_collection(&root).await.unwrap_err().code(),
        "INVALID_COLLECTION_PATH"
    );
}

#[tokio::test]
async fn list_collections_filters_by_prefix() {
    let mut store = MockSourceStore::new();
    store.expect_list_collections().returning(|| {
        Ok(["ab", "a/b", "a", "b"]
            .iter()
            .map(|p| faas_ports::CollectionInfo {
                path: path(p),
                created_at: chrono::Utc::now(),
                ignored_env_keys: Vec::new(),
            })
            .collect())
    });
    let engine = engine(store, MockContainerRuntime::new());
    let all: Vec<String> = engine
        .list_collections(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(all, vec!["a", "a/b", "ab", "b"]);
    let under_a: Vec<String> = engine
        .list_collections(Some(&path("a")))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(under_a, vec!["a", "a/b"]);
}
