//! The invoke use case: load the deployment, merge env, take a run slot,
//! run, judge the result, hand logs to the sink.

use std::time::{Duration, Instant};

use faas_ports::{
    CollectionPath, Deployment, EnvMap, ErrorCode, FunctionName, RunFailure, RunId, RunJob, RunResult, Version,
};
use serde_json::{Map, Value};

use crate::capacity::Admission;
use crate::run_result;
use crate::{env, logs, DomainError, Engine, Limits};

/// The input object of a run: a JSON object (absent or `null` is `{}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInput(Map<String, Value>);

impl RunInput {
    /// `None`/`null` → `{}`; an object is kept; anything else is `INVALID_INPUT`.
    pub fn parse(value: Option<Value>) -> Result<Self, DomainError> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(Value::Object(map)) => Ok(Self(map)),
            Some(_) => Err(DomainError::InvalidInput),
        }
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// One invoke, validated at the boundary. Build it with
/// [`InvokeRequest::new`] and the `with_*` methods, or as a struct.
///
/// ```
/// # use std::time::Duration;
/// # use faas_domain::InvokeRequest;
/// # use faas_ports::{CollectionPath, FunctionName};
/// let request = InvokeRequest::new(FunctionName::parse("hello")?)
///     .in_collection(CollectionPath::parse("team/api")?)
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(request.timeout, Some(Duration::from_secs(5)));
/// # Ok::<(), faas_ports::PortError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeRequest {
    /// The function's collection.
    pub collection_path: CollectionPath,
    /// The function's name.
    pub name: FunctionName,
    /// The input object.
    pub input: RunInput,
    /// Requested timeout (`None`: the engine's default). The wire's
    /// `timeout_ms ≤ 0` meaning "the default" is translated at the HTTP edge.
    pub timeout: Option<Duration>,
    /// Request env, the highest layer.
    pub env: EnvMap,
    /// Pinned version, or the current one.
    pub version: Option<Version>,
    /// Return the run's `console.*` calls in [`RunResult::logs`] (capped,
    /// see [`crate::RUN_LOGS_MAX_ENTRIES`]), whether or not a log sink is set.
    pub include_logs: bool,
}

impl InvokeRequest {
    /// An invoke of the root collection's `name` with an empty input, the
    /// default timeout, no request env and the current version.
    pub fn new(name: FunctionName) -> Self {
        Self {
            collection_path: CollectionPath::root(),
            name,
            input: RunInput::default(),
            timeout: None,
            env: EnvMap::new(),
            version: None,
            include_logs: false,
        }
    }

    /// The function lives in `collection_path`.
    #[must_use]
    pub fn in_collection(mut self, collection_path: CollectionPath) -> Self {
        self.collection_path = collection_path;
        self
    }

    /// The run's input object.
    #[must_use]
    pub fn with_input(mut self, input: RunInput) -> Self {
        self.input = input;
        self
    }

    /// The run's timeout (at most the engine's maximum).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The request env, the highest env layer.
    #[must_use]
    pub fn with_env(mut self, env: EnvMap) -> Self {
        self.env = env;
        self
    }

    /// Runs this version instead of the current one.
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }

    /// Returns the run's `console.*` calls in the result's `logs`.
    #[must_use]
    pub fn with_logs(mut self) -> Self {
        self.include_logs = true;
        self
    }
}

impl Limits {
    /// The effective timeout: absent → the default; above the maximum →
    /// `INVALID_TIMEOUT`.
    pub fn resolve_timeout(&self, requested: Option<Duration>) -> Result<Duration, DomainError> {
        match requested {
            None => Ok(self.default_timeout),
            Some(timeout) if timeout > self.max_timeout => Err(DomainError::InvalidTimeout {
                requested: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                max: u64::try_from(self.max_timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            Some(timeout) => Ok(timeout),
        }
    }
}

impl Engine {
    /// Runs a function. `Ok` whenever a run was attempted (whatever its
    /// outcome, see [`RunResult`]); `Err` for bad requests, missing
    /// functions, storage failures and a full queue.
    #[tracing::instrument(
        name = "invoke",
        skip_all,
        fields(
            run_id = tracing::field::Empty,
            function = %req.name,
            collection = %req.collection_path,
            deployment = tracing::field::Empty,
            start_kind = tracing::field::Empty,
            status = tracing::field::Empty,
            error_code = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    )]
    pub async fn invoke(&self, req: InvokeRequest) -> Result<RunResult, DomainError> {
        let started = Instant::now();
        let timeout = self.limits.resolve_timeout(req.timeout)?;
        let deployment = self.get_function(&req.collection_path, &req.name, req.version).await?;
        let mut layers = Vec::new();
        for path in req.collection_path.lineage() {
            layers.push(self.store.collection_env(&path).await?);
        }
        let run_id = RunId::generate();
        let span = tracing::Span::current();
        span.record("run_id", run_id.as_str());
        span.record("deployment", deployment.deployment_id().as_str());

        let mut refs: Vec<&EnvMap> = layers.iter().collect();
        refs.push(&deployment.env);
        refs.push(&req.env);
        let run_env = env::run_env(&refs, &run_id, &deployment);
        let input_json = serde_json::to_vec(req.input.as_map()).map_err(|_| DomainError::InvalidInput)?;

        let outcome = match self.capacity.acquire(timeout.saturating_sub(started.elapsed())).await? {
            Admission::TimedOut => Err(RunFailure::new(
                ErrorCode::Timeout,
                format!(
                    "function timed out after {} ms waiting for a free run slot",
                    timeout.as_millis()
                ),
                Vec::new(),
            )),
            Admission::Admitted(_slot) => {
                let job = RunJob {
                    run_id: run_id.clone(),
                    function_id: deployment.function_id(),
                    deployment_id: deployment.deployment_id(),
                    source_code: deployment.source_code.clone(),
                    input_json,
                    env: run_env,
                    timeout: timeout.saturating_sub(started.elapsed()),
                    max_output_bytes: self.limits.max_output_bytes.saturating_add(run_result::ENVELOPE_SLACK),
                    // Without a sink or a caller that wants them nobody reads
                    // the logs: ask for none.
                    max_log_bytes: if self.log_sink.is_some() || req.include_logs {
                        self.limits.max_log_bytes
                    } else {
                        0
                    },
                };
                let outcome = self.runtime.run(job).await;
                let kind = match &outcome {
                    Ok(output) => output.start_kind,
                    Err(failure) => failure.start_kind,
                };
                self.count_start(kind);
                tracing::Span::current().record("start_kind", kind.as_str());
                with_limit_messages(outcome, timeout, self.limits.max_output_bytes)
            }
        };
        let start_kind = match &outcome {
            Ok(output) => output.start_kind,
            Err(failure) => failure.start_kind,
        };

        let judged = run_result::classify(&outcome, self.limits.max_output_bytes);
        self.emit_logs(&outcome, &run_id, &deployment).await;

        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut result = run_result::build(&run_id, &deployment, judged, duration_ms, start_kind);
        if req.include_logs {
            let raw = match &outcome {
                Ok(out) => &out.logs,
                Err(failure) => &failure.logs,
            };
            let (entries, truncated) = logs::run_logs(raw);
            result.logs = Some(entries);
            result.logs_truncated = Some(truncated);
        }
        span.record(
            "status",
            if result.error_code.is_none() {
                "success"
            } else {
                "failed"
            },
        );
        if let Some(code) = result.error_code {
            span.record("error_code", code.as_str());
        }
        span.record("duration_ms", duration_ms);
        tracing::info!("run finished");
        Ok(result)
    }

    async fn emit_logs(
        &self,
        outcome: &Result<faas_ports::RunOutput, RunFailure>,
        run_id: &RunId,
        deployment: &Deployment,
    ) {
        let Some(sink) = &self.log_sink else { return };
        let raw = match outcome {
            Ok(out) => &out.logs,
            Err(failure) => &failure.logs,
        };
        let start_kind = match outcome {
            Ok(out) => out.start_kind,
            Err(failure) => failure.start_kind,
        };
        let entries = logs::parse_captured(raw, run_id, deployment, start_kind);
        if entries.is_empty() {
            return;
        }
        if let Err(e) = sink.emit(&entries).await {
            tracing::warn!(error = %faas_ports::report::Report(&e), "function log sink refused entries");
        }
    }
}

/// The runtime's messages name the limits the caller set (docs/api.md): a
/// timeout names the run's limit in ms (the runtime only knows the time that
/// was left when it started), an oversized output the configured
/// `LOWCODE_FAAS_MAX_OUTPUT_BYTES` (the runtime allows the envelope's own
/// bytes on top).
fn with_limit_messages(
    outcome: Result<faas_ports::RunOutput, RunFailure>,
    timeout: Duration,
    max_output_bytes: u64,
) -> Result<faas_ports::RunOutput, RunFailure> {
    outcome.map_err(|failure| match failure.code {
        ErrorCode::Timeout => RunFailure {
            message: format!("function timed out after {} ms", timeout.as_millis()),
            ..failure
        },
        ErrorCode::OutputTooLarge => {
            let runtime_limit = max_output_bytes.saturating_add(run_result::ENVELOPE_SLACK);
            RunFailure {
                message: failure.message.replace(
                    &format!("the limit of {runtime_limit} bytes"),
                    &format!("the limit of {max_output_bytes} bytes"),
                ),
                ..failure
            }
        }
        _ => failure,
    })
}
