//! The invoke use case: load the deployment, merge env, take a run slot,
//! run, judge the result, hand logs to the sink.

use std::sync::atomic::Ordering;
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

/// One invoke, validated at the boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeRequest {
    /// The function's collection.
    pub collection_path: CollectionPath,
    /// The function's name.
    pub name: FunctionName,
    /// The input object.
    pub input: RunInput,
    /// Requested timeout in ms (`None` or ≤ 0: the default).
    pub timeout_ms: Option<i64>,
    /// Request env, the highest layer.
    pub env: EnvMap,
    /// Pinned version, or the current one.
    pub version: Option<Version>,
}

impl Limits {
    /// The effective timeout: absent or ≤ 0 → the default; above the maximum → `INVALID_TIMEOUT`.
    pub fn resolve_timeout(&self, requested_ms: Option<i64>) -> Result<Duration, DomainError> {
        match requested_ms {
            None => Ok(self.default_timeout),
            Some(ms) if ms <= 0 => Ok(self.default_timeout),
            Some(ms) => {
                let max = u64::try_from(self.max_timeout.as_millis()).unwrap_or(u64::MAX);
                let ms_u = ms.unsigned_abs();
                if ms_u > max {
                    Err(DomainError::InvalidTimeout { requested: ms, max })
                } else {
                    Ok(Duration::from_millis(ms_u))
                }
            }
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
            status = tracing::field::Empty,
            error_code = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    )]
    pub async fn invoke(&self, req: InvokeRequest) -> Result<RunResult, DomainError> {
        let started = Instant::now();
        let timeout = self.limits.resolve_timeout(req.timeout_ms)?;
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
            Admission::TimedOut => Err(RunFailure {
                code: ErrorCode::Timeout,
                message: format!(
                    "function timed out after {} ms waiting for a free run slot",
                    timeout.as_millis()
                ),
                logs: Vec::new(),
            }),
            Admission::Admitted(_slot) => {
                self.cold_starts.fetch_add(1, Ordering::Relaxed);
                let job = RunJob {
                    run_id: run_id.clone(),
                    function_id: deployment.function_id(),
                    deployment_id: deployment.deployment_id(),
                    source_code: deployment.source_code.clone(),
                    input_json,
                    env: run_env,
                    timeout: timeout.saturating_sub(started.elapsed()),
                    max_output_bytes: self.limits.max_output_bytes.saturating_add(run_result::ENVELOPE_SLACK),
                    // Without a sink nobody reads the logs: ask for none.
                    max_log_bytes: if self.log_sink.is_some() {
                        self.limits.max_log_bytes
                    } else {
                        0
                    },
                };
                with_timeout_message(self.runtime.run(job).await, timeout)
            }
        };

        let judged = run_result::classify(&outcome, self.limits.max_output_bytes);
        self.emit_logs(&outcome, &run_id, &deployment).await;

        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = run_result::build(&run_id, &deployment, judged, duration_ms);
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
        let entries = logs::parse_captured(raw, run_id, deployment);
        if entries.is_empty() {
            return;
        }
        if let Err(e) = sink.emit(&entries).await {
            tracing::warn!(error = %faas_ports::report::Report(&e), "function log sink refused entries");
        }
    }
}

/// A runtime timeout's message names the run's limit in ms (SPEC §5): the
/// runtime only knows the time that was left when it started.
fn with_timeout_message(
    outcome: Result<faas_ports::RunOutput, RunFailure>,
    timeout: Duration,
) -> Result<faas_ports::RunOutput, RunFailure> {
    outcome.map_err(|failure| match failure.code {
        ErrorCode::Timeout => RunFailure {
            message: format!("function timed out after {} ms", timeout.as_millis()),
            ..failure
        },
        _ => failure,
    })
}
