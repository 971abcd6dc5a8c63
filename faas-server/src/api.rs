//! The dispatcher's routes (docs/api.md): parse and validate at the boundary,
//! call the engine, shape the reply. Every domain error becomes its JSON
//! error here, through [`ApiError::from`].

use std::sync::Arc;

use faas_adapters::logs::LogBuffer;
use faas_domain::{CreateFunction, Engine, InvokeRequest, SourceSpec, UpdateFunction};
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, Function, FunctionListItem, FunctionName, Language, PortError,
    RunRequest, SourceUrl, Version,
};
use serde::Deserialize;
use serde_json::{json, Value};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

pub use faas_http::browser::BrowserPolicy;
use faas_http::http::{self, Incoming, RouteInfo, Service};
use faas_http::logs_api;
use faas_http::metrics::Metrics;
use faas_http::replies::{
    engine_readiness, healthz, include_logs_query, metrics_reply, openapi, readiness_with, run_in_process, validate_run,
};

use crate::proxy::{route_key, WorkerPool, WORKER_GRACE};
use crate::router::{self, Route};
use crate::{ApiError, Settings};

/// The dispatcher: the engine plus the settings the HTTP edge needs.
#[derive(Debug)]
pub struct Dispatcher {
    /// The engine every route calls.
    pub(crate) engine: Arc<Engine>,
    /// Validated settings.
    pub(crate) settings: Arc<Settings>,
    /// Process metrics.
    pub(crate) metrics: Metrics,
    /// Proxy mode: the workers that run invokes (docs/api.md).
    pub(crate) proxy: Option<Arc<WorkerPool>>,
    /// The function-log buffer (`None` when capture is off).
    pub(crate) log_buffer: Option<Arc<LogBuffer>>,
    /// Removes this process's containers before it exits.
    pub(crate) cleanup: crate::app::Cleanup,
    /// The cross-site rule and CORS origins (`LOWCODE_FAAS_CORS_ORIGINS`).
    pub(crate) browser: BrowserPolicy,
}

#[derive(Deserialize)]
struct CreateCollectionBody {
    path: Option<String>,
    env: Option<Value>,
}

#[derive(Deserialize)]
struct EnvBody {
    env: Option<Value>,
}

#[derive(Deserialize)]
struct CreateFunctionBody {
    name: Option<String>,
    language: Option<String>,
    source_code: Option<String>,
    source_url: Option<String>,
    collection_path: Option<String>,
    env: Option<Value>,
}

#[derive(Deserialize)]
struct UpdateFunctionBody {
    source_code: Option<String>,
    source_url: Option<String>,
    env: Option<Value>,
}

#[derive(Deserialize)]
struct PullBody {
    source_url: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct InvokeBody {
    input: Option<Value>,
    timeout_ms: Option<i64>,
    env: Option<Value>,
    version: Option<Value>,
    include_logs: Option<bool>,
}

#[async_trait::async_trait]
impl Service for Dispatcher {
    type Route = Route;

    fn route(&self, method: &Method, path: &str) -> Result<RouteInfo<Route>, ApiError> {
        let playground = if self.settings.ui {
            router::Playground::Served
        } else {
            router::Playground::Off
        };
        let route = router::route(method, path, playground)?;
        Ok(RouteInfo {
            public: route.is_public(),
            label: route.label(),
            route,
        })
    }

    fn token(&self) -> Option<&str> {
        self.settings.api_token.as_ref().map(|t| t.expose())
    }

    fn max_body_bytes(&self) -> u64 {
        self.settings.max_body_bytes
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn browser_policy(&self) -> &BrowserPolicy {
        &self.browser
    }

    async fn handle(&self, routed: RouteInfo<Route>, mut req: Incoming) -> Result<Response, ApiError> {
        // HEAD is answered as GET (the routes allow it only where GET is).
        let method = if req.method == Method::HEAD {
            Method::GET
        } else {
            req.method.clone()
        };
        match routed.route {
            Route::Healthz => Ok(healthz()),
            Route::Readyz => Ok(self.readyz().await),
            Route::OpenApi => Ok(openapi(crate::openapi::DOCUMENT)),
            Route::Metrics => Ok(metrics_reply(
                self.metrics
                    .render(Some(self.engine.stats()), Some(self.engine.runtime_status())),
            )),
            Route::Collections if method == Method::GET => self.list_collections(&req).await,
            Route::Collections => self.create_collection(&mut req).await,
            Route::CollectionEnv(cp) => self.set_collection_env(&cp, &mut req).await,
            Route::Collection(cp) => {
                let cp = collection_in_url(&cp)?;
                self.engine.delete_collection(&cp).await?;
                Ok(http::no_content())
            }
            Route::Functions(cp) if method == Method::GET => {
                let cp = collection_of(cp.as_deref(), None, &req)?;
                let list: Vec<FunctionListItem> = self
                    .engine
                    .list_functions(&cp)
                    .await?
                    .iter()
                    .map(FunctionListItem::from)
                    .collect();
                Ok(http::json(StatusCode::OK, &list))
            }
            Route::Functions(cp) => self.create_function(cp.as_deref(), &mut req).await,
            Route::Function(cp, name) => {
                let cp = collection_of(cp.as_deref(), None, &req)?;
                let name = FunctionName::parse_stored(&name)?;
                match method {
                    Method::GET => {
                        let version = req.query("version").map(Version::parse).transpose()?;
                        let d = self.engine.get_function(&cp, &name, version).await?;
                        Ok(self.function_reply(StatusCode::OK, &d))
                    }
                    Method::PUT => self.update_function(cp, name, &mut req).await,
                    _ => {
                        self.engine.delete_function(&cp, &name).await?;
                        Ok(http::no_content())
                    }
                }
            }
            Route::Versions(cp, name) => {
                let cp = collection_of(cp.as_deref(), None, &req)?;
                let name = FunctionName::parse_stored(&name)?;
                let versions = self.engine.list_versions(&cp, &name).await?;
                Ok(http::json(StatusCode::OK, &versions))
            }
            Route::Invoke(cp, name) => self.invoke(cp.as_deref(), &name, &mut req).await,
            Route::Pull(cp, name) => {
                let cp = collection_of(cp.as_deref(), None, &req)?;
                let name = FunctionName::parse_stored(&name)?;
                let body: PullBody = req.json(false).await?;
                let url = present(body.source_url).ok_or(faas_domain::DomainError::SourceRequired)?;
                let url = SourceUrl::parse(&url)?;
                let d = self.engine.pull_function(&cp, &name, &url).await?;
                Ok(self.function_reply(StatusCode::OK, &d))
            }
            Route::LogsQuery | Route::Logs => match &self.proxy {
                Some(workers) => {
                    let path = if routed.route == Route::Logs {
                        "/v1/function-logs"
                    } else {
                        "/v1/function-logs/query"
                    };
                    workers.get(path, &req.raw_query(), WORKER_GRACE).await
                }
                None if routed.route == Route::Logs => logs_api::search(self.log_buffer.as_deref(), &req),
                None => logs_api::query(&req, self.settings.logs.grafana_explore_url_template.as_deref()),
            },
            Route::UiRedirect => Ok(crate::ui::redirect()),
            Route::Ui(file) => crate::ui::file(&file),
        }
    }
}

impl Dispatcher {
    /// A `Function` body; with `LOWCODE_FAAS_REDACT_ENV` its env values are
    /// masked (the one place a response shows env).
    fn function_reply(&self, status: StatusCode, d: &Deployment) -> Response {
        let function = Function::from(d);
        let function = if self.settings.redact_env {
            function.with_env_redacted()
        } else {
            function
        };
        http::json(status, &function)
    }

    async fn readyz(&self) -> Response {
        match &self.proxy {
            // Proxy mode runs nothing here: storage must answer and at
            // least one worker must be healthy (as the last probe saw it).
            Some(workers) => {
                let storage = self.engine.health().await.storage.map_err(|e| e.to_string());
                let health = workers.health();
                let worker = if health.healthy > 0 {
                    Ok(())
                } else {
                    Err(format!("no healthy worker ({} of {})", health.healthy, health.total))
                };
                readiness_with(
                    &[("storage", storage), ("worker", worker)],
                    Some(("workers", health.to_json())),
                )
            }
            None => engine_readiness(&self.engine).await,
        }
    }

    async fn list_collections(&self, req: &Incoming) -> Result<Response, ApiError> {
        let prefix = req.query("prefix").map(CollectionPath::parse_stored).transpose()?;
        let prefix = prefix.filter(|p| !p.is_root());
        let list: Vec<CollectionInfo> = self.engine.list_collections(prefix.as_ref()).await?;
        Ok(http::json(StatusCode::OK, &list))
    }

    async fn create_collection(&self, req: &mut Incoming) -> Result<Response, ApiError> {
        let body: CreateCollectionBody = req.json(false).await?;
        let raw = body
            .path
            .ok_or_else(|| PortError::InvalidCollectionPath("path is required".into()))?;
        // New collections follow today's grammar unless LOWCODE_FAAS_LEGACY_NAMES.
        let path = CollectionPath::parse_new(&raw, self.settings.legacy_names)?;
        let env = EnvMap::from_json(&body.env.unwrap_or(Value::Null))?;
        let info = self.engine.create_collection(&path, &env).await?;
        Ok(http::json(StatusCode::CREATED, &info))
    }

    async fn set_collection_env(&self, cp: &str, req: &mut Incoming) -> Result<Response, ApiError> {
        let cp = collection_in_url(cp)?;
        let body: EnvBody = req.json(false).await?;
        // `{}` and `{"env": null}` clear the env, as the Go version did.
        let env = EnvMap::from_json(&body.env.unwrap_or(Value::Null))?;
        self.engine.set_collection_env(&cp, &env).await?;
        Ok(http::json(StatusCode::OK, &json!({"status": "ok"})))
    }

    async fn create_function(&self, url_cp: Option<&str>, req: &mut Incoming) -> Result<Response, ApiError> {
        let body: CreateFunctionBody = req.json(false).await?;
        // Stored names of any grammar are addressable; new ones follow today's
        // grammar unless LOWCODE_FAAS_LEGACY_NAMES (docs/api.md §2.1).
        let name = FunctionName::parse_new(body.name.as_deref().unwrap_or(""), self.settings.legacy_names)?;
        let cp = collection_of(url_cp, body.collection_path.as_deref(), req)?;
        let env = EnvMap::from_json(&body.env.unwrap_or(Value::Null))?;
        let language =
            Language::parse(body.language.as_deref()).map_err(faas_domain::DomainError::UnsupportedLanguage)?;
        let url = present(body.source_url).as_deref().map(SourceUrl::parse).transpose()?;
        let source = SourceSpec::exactly_one(body.source_code, url)?;
        let d = self
            .engine
            .create_function(CreateFunction {
                collection_path: cp,
                name,
                language,
                source,
                env,
            })
            .await?;
        Ok(self.function_reply(StatusCode::CREATED, &d))
    }

    async fn update_function(
        &self,
        cp: CollectionPath,
        name: FunctionName,
        req: &mut Incoming,
    ) -> Result<Response, ApiError> {
        let body: UpdateFunctionBody = req.json(false).await?;
        let env = match body.env {
            None | Some(Value::Null) => None,
            Some(v) => Some(EnvMap::from_json(&v)?),
        };
        let url = present(body.source_url).as_deref().map(SourceUrl::parse).transpose()?;
        let source = SourceSpec::at_most_one(body.source_code, url)?;
        let d = self
            .engine
            .update_function(UpdateFunction {
                collection_path: cp,
                name,
                source,
                env,
            })
            .await?;
        Ok(self.function_reply(StatusCode::OK, &d))
    }

    async fn invoke(&self, url_cp: Option<&str>, name: &str, req: &mut Incoming) -> Result<Response, ApiError> {
        let cp = collection_of(url_cp, None, req)?;
        let name = FunctionName::parse_stored(name)?;
        let body: InvokeBody = req.json(true).await?;
        let run = body.into_run(&cp, &name, req.query("version"), || include_logs_query(req))?;
        let request = validate_run(run)?;
        match &self.proxy {
            Some(workers) => self.forward(workers, request).await,
            None => run_in_process(&self.engine, &self.metrics, request).await,
        }
    }

    /// Forwards a validated run to the worker chosen for its key with the
    /// effective timeout, waiting at most that timeout plus [`WORKER_GRACE`].
    /// No storage read.
    async fn forward(&self, workers: &WorkerPool, request: InvokeRequest) -> Result<Response, ApiError> {
        let timeout = self.engine.limits().resolve_timeout(request.timeout)?;
        let key = route_key(&request);
        let run = forwarded_run(&request, timeout);
        let (response, result) = workers.run(&key, &run, timeout + WORKER_GRACE).await?;
        if let Some(result) = result {
            self.metrics.observe_run(&result);
        }
        Ok(response)
    }
}

impl InvokeBody {
    /// The run request of an invoke of `name` in `cp` with this body. The
    /// body's `version` and `include_logs` win; the URL's `?version=` and
    /// `?include_logs=` (`query_logs`) are read, and validated, only without them.
    pub(crate) fn into_run(
        self,
        cp: &CollectionPath,
        name: &FunctionName,
        query_version: Option<&str>,
        query_logs: impl FnOnce() -> Result<Option<bool>, ApiError>,
    ) -> Result<RunRequest, ApiError> {
        let version = match self.version {
            None | Some(Value::Null) => query_version
                .map(Version::parse)
                .transpose()?
                .map(|v| Value::from(v.get())),
            Some(v) => Some(v),
        };
        Ok(RunRequest {
            collection_path: cp.as_option().map(str::to_owned),
            function_name: name.to_string(),
            input: self.input,
            timeout_ms: self.timeout_ms,
            env: self.env,
            version,
            include_logs: match self.include_logs {
                Some(wanted) => Some(wanted),
                None => query_logs()?,
            },
        })
    }
}

/// The `/v1/run` body a validated run is forwarded with, carrying the
/// effective `timeout`: the worker validates it back into the same request.
pub(crate) fn forwarded_run(request: &InvokeRequest, timeout: std::time::Duration) -> RunRequest {
    RunRequest {
        collection_path: request.collection_path.as_option().map(str::to_owned),
        function_name: request.name.to_string(),
        input: Some(Value::Object(request.input.as_map().clone())),
        timeout_ms: Some(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
        env: (!request.env.is_empty()).then(|| json!(request.env.as_map())),
        version: request.version.map(|v| Value::from(v.get())),
        include_logs: request.include_logs.then_some(true),
    }
}

/// A collection path from the URL (`""` = root).
/// A `source_url` that is blank counts as absent (the Go version ignored it).
fn present(url: Option<String>) -> Option<String> {
    url.filter(|u| !u.trim().is_empty())
}

/// A collection named in the URL: an existing one, so any path the Go
/// version could store (docs/api.md §2.2).
fn collection_in_url(raw: &str) -> Result<CollectionPath, ApiError> {
    Ok(CollectionPath::parse_stored(raw)?)
}

/// The collection of a `/functions…` request: URL `{cp}` wins over the body,
/// the body over `?collection_path=`; absent = root. Functions live in
/// existing collections, so any stored path is accepted.
fn collection_of(url: Option<&str>, body: Option<&str>, req: &Incoming) -> Result<CollectionPath, ApiError> {
    let raw = url.or(body).or_else(|| req.query("collection_path")).unwrap_or("");
    Ok(CollectionPath::parse_stored(raw)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faas_http::http::parse_json_body;
    use proptest::prelude::*;

    use super::*;

    /// An invoke body as the dispatcher validates it.
    fn invoke(body: &[u8], query_version: Option<&str>) -> Result<faas_domain::InvokeRequest, ApiError> {
        let cp = CollectionPath::parse("team/api")?;
        let name = FunctionName::parse("hello")?;
        let body: InvokeBody = parse_json_body(body, true)?;
        validate_run(body.into_run(&cp, &name, query_version, || Ok(None))?)
    }

    #[test]
    fn the_body_version_wins_over_the_query() {
        assert_eq!(
            invoke(br#"{"version":2}"#, Some("5")).unwrap().version.unwrap().get(),
            2
        );
        assert_eq!(invoke(b"{}", Some("5")).unwrap().version.unwrap().get(), 5);
        assert_eq!(invoke(b"{}", Some("x")).unwrap_err().code, "INVALID_VERSION");
        assert_eq!(
            invoke(br#"{"version":1}"#, Some("x")).unwrap().version.unwrap().get(),
            1
        );
        assert_eq!(invoke(br#"{"input":[1]}"#, None).unwrap_err().code, "INVALID_INPUT");
    }

    fn input() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        proptest::collection::btree_map(".{0,6}", value, 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn a_forwarded_invoke_validates_back_into_the_same_request(
            input in input(),
            timeout_ms in proptest::option::of(-5i64..10_000_000),
            env in proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,6}", "[a-z ]{0,6}", 0..4),
            version in proptest::option::of(1u64..1000),
            include_logs in proptest::option::of(any::<bool>()),
        ) {
            let body = json!({
                "input": input,
                "timeout_ms": timeout_ms,
                "env": env,
                "version": version,
                "include_logs": include_logs,
            });
            let Ok(request) = invoke(&serde_json::to_vec(&body).unwrap(), None) else {
                // Only env keys that the rules refuse (PATH, LD_*, …) fail here.
                prop_assert!(EnvMap::from_json(&json!(env)).is_err());
                return Ok(());
            };
            let timeout = request.timeout.unwrap_or(Duration::from_secs(30));
            let wire = serde_json::to_vec(&forwarded_run(&request, timeout)).unwrap();
            let back = validate_run(parse_json_body::<RunRequest>(&wire, true).unwrap()).unwrap();
            let mut want = request;
            want.timeout = Some(timeout);
            prop_assert_eq!(back, want);
        }
    }
}
