//! Contract types: what is stored, what goes over the wire (docs/api.md).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::{CollectionPath, EnvMap, FunctionName, Language, Version};

/// Serialises a timestamp as RFC 3339 UTC with millisecond precision (`2026-01-02T03:04:05.678Z`).
pub fn serialize_timestamp<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The id of a function: `name` for the root, `collection/path/name` otherwise.
pub fn function_id(collection_path: &CollectionPath, name: &FunctionName) -> String {
    if collection_path.is_root() {
        name.to_string()
    } else {
        format!("{}/{}", collection_path.as_str(), name)
    }
}

/// The id of a deployment: `<function id>@v<N>`.
pub fn deployment_id(collection_path: &CollectionPath, name: &FunctionName, version: Version) -> String {
    format!("{}@v{}", function_id(collection_path, name), version)
}

/// One stored version of a function: everything needed to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The function's collection.
    pub collection_path: CollectionPath,
    /// The function's name.
    pub name: FunctionName,
    /// Its language.
    pub language: Language,
    /// The ESM module source.
    pub source_code: String,
    /// The function's own env (not merged with collections).
    pub env: EnvMap,
    /// This version's number.
    pub version: Version,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
}

impl Deployment {
    /// See [`function_id`].
    pub fn function_id(&self) -> String {
        function_id(&self.collection_path, &self.name)
    }

    /// See [`deployment_id`].
    pub fn deployment_id(&self) -> String {
        deployment_id(&self.collection_path, &self.name, self.version)
    }
}

/// A version to write: the store allocates its number and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The function's collection (must exist).
    pub collection_path: CollectionPath,
    /// The function's name.
    pub name: FunctionName,
    /// Its language.
    pub language: Language,
    /// The ESM module source.
    pub source_code: String,
    /// The function's own env.
    pub env: EnvMap,
}

impl NewVersion {
    /// The deployment this version became once a store gave it its number
    /// and timestamp.
    pub fn to_deployment(&self, version: Version, created_at: DateTime<Utc>) -> Deployment {
        Deployment {
            collection_path: self.collection_path.clone(),
            name: self.name.clone(),
            language: self.language,
            source_code: self.source_code.clone(),
            // What was written: the ignored keys of a stored env are not.
            env: self.env.clone().without_ignored_keys(),
            version,
            created_at,
        }
    }
}

/// Which versions a store keeps (see [`crate::SourceStore::history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionHistory {
    /// Only the current version: pinning any other is `VersionNotAvailable`
    /// and `list_versions` has one row (`files`).
    CurrentOnly,
    /// Every saved version stays loadable as it was saved and never changes;
    /// a version never saved is `VersionNotFound` (`db_s3`, `memory`).
    Full,
}

/// One row of a function listing, as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSummary {
    /// The function's collection.
    pub collection_path: CollectionPath,
    /// The function's name.
    pub name: FunctionName,
    /// Its language.
    pub language: Language,
    /// The current version.
    pub version: Version,
    /// When the current version was written.
    pub created_at: DateTime<Utc>,
}

/// The `Function` body of the API. Its `Debug` shows env keys only.
#[derive(Clone, PartialEq, Serialize)]
pub struct Function {
    /// Function id.
    pub id: String,
    /// Collection path, omitted for the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_path: Option<String>,
    /// Name.
    pub name: String,
    /// Language.
    pub language: Language,
    /// Source.
    pub source_code: String,
    /// Function env, omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Keys of the stored function env that break today's env rules (data
    /// of the Go version): not passed to runs, not kept by the next save.
    /// Omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_env_keys: Vec<String>,
    /// When this version was written.
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    /// Version number.
    pub version: u64,
    /// Deployment id.
    pub deployment_id: String,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("id", &self.id)
            .field("collection_path", &self.collection_path)
            .field("name", &self.name)
            .field("language", &self.language)
            .field("source_code_bytes", &self.source_code.len())
            .field("env", &crate::redact(&self.env))
            .field("created_at", &self.created_at)
            .field("version", &self.version)
            .field("deployment_id", &self.deployment_id)
            .finish()
    }
}

impl Function {
    /// The same function with every env value shown as
    /// [`crate::REDACTED_ENV_VALUE`] (`LOWCODE_FAAS_REDACT_ENV`).
    #[must_use]
    pub fn with_env_redacted(mut self) -> Self {
        self.env = crate::redact(&self.env);
        self
    }
}

impl From<&Deployment> for Function {
    fn from(d: &Deployment) -> Self {
        Function {
            id: d.function_id(),
            collection_path: d.collection_path.as_option().map(str::to_owned),
            name: d.name.to_string(),
            language: d.language,
            source_code: d.source_code.clone(),
            env: d.env.as_map().clone(),
            ignored_env_keys: d.env.ignored_keys().to_vec(),
            created_at: d.created_at,
            version: d.version.get(),
            deployment_id: d.deployment_id(),
        }
    }
}

/// One element of `GET /functions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionListItem {
    /// Function id.
    pub id: String,
    /// Collection path, omitted for the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_path: Option<String>,
    /// Name.
    pub name: String,
    /// Language.
    pub language: Language,
    /// Current version.
    pub version: u64,
    /// When the current version was written.
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
}

impl From<&FunctionSummary> for FunctionListItem {
    fn from(s: &FunctionSummary) -> Self {
        FunctionListItem {
            id: function_id(&s.collection_path, &s.name),
            collection_path: s.collection_path.as_option().map(str::to_owned),
            name: s.name.to_string(),
            language: s.language,
            version: s.version.get(),
            created_at: s.created_at,
        }
    }
}

/// One element of `GET /functions/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionItem {
    /// Version number.
    pub version: Version,
    /// When it was written.
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
}

/// A collection as listed and created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionInfo {
    /// The collection's path (never the root in a listing).
    pub path: CollectionPath,
    /// When it was created.
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    /// Keys of the stored collection env that break today's env rules
    /// (data of the Go version), sorted: not passed to runs, not kept by the
    /// next `PUT …/env`. Omitted when empty (always, for a new collection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_env_keys: Vec<String>,
}

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The platform ran the handler and it returned a valid result (even `ok:false`).
    Success,
    /// The platform could not produce a handler result.
    Failed,
}

/// Why a run failed (docs/api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The handler threw or rejected.
    HandlerThrow,
    /// The handler returned something other than an object with a boolean `ok`.
    BadReturn,
    /// The module has no `handler` export.
    NoHandler,
    /// `input.json` could not be read.
    BadInput,
    /// The module failed to load (syntax or import error).
    SyntaxError,
    /// The run passed its deadline and was killed.
    Timeout,
    /// The run was killed for memory.
    OutOfMemory,
    /// The result was larger than the output limit.
    OutputTooLarge,
    /// The process ended without writing a result.
    ExitedWithoutOutput,
    /// The runtime (Docker daemon, node) could not be reached.
    RuntimeUnavailable,
    /// The image could not be found or pulled.
    ImageUnavailable,
    /// Anything else that went wrong in the platform.
    Internal,
}

impl ErrorCode {
    /// All codes, for tables and metrics.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::HandlerThrow,
        ErrorCode::BadReturn,
        ErrorCode::NoHandler,
        ErrorCode::BadInput,
        ErrorCode::SyntaxError,
        ErrorCode::Timeout,
        ErrorCode::OutOfMemory,
        ErrorCode::OutputTooLarge,
        ErrorCode::ExitedWithoutOutput,
        ErrorCode::RuntimeUnavailable,
        ErrorCode::ImageUnavailable,
        ErrorCode::Internal,
    ];

    /// The wire string (`HANDLER_THROW` …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::HandlerThrow => "HANDLER_THROW",
            ErrorCode::BadReturn => "BAD_RETURN",
            ErrorCode::NoHandler => "NO_HANDLER",
            ErrorCode::BadInput => "BAD_INPUT",
            ErrorCode::SyntaxError => "SYNTAX_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::OutOfMemory => "OUT_OF_MEMORY",
            ErrorCode::OutputTooLarge => "OUTPUT_TOO_LARGE",
            ErrorCode::ExitedWithoutOutput => "EXITED_WITHOUT_OUTPUT",
            ErrorCode::RuntimeUnavailable => "RUNTIME_UNAVAILABLE",
            ErrorCode::ImageUnavailable => "IMAGE_UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// Parses a wire string.
    pub fn parse(raw: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// How the runner (container or process) of a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartKind {
    /// Started for this run.
    #[default]
    Cold,
    /// Taken from the pool of started generic runners; removed after the run.
    Prewarm,
    /// Reused: a runner that served this deployment with this env before.
    Warm,
}

impl StartKind {
    /// Every kind, in wire order.
    pub const ALL: [StartKind; 3] = [StartKind::Cold, StartKind::Prewarm, StartKind::Warm];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::Prewarm => "prewarm",
            StartKind::Warm => "warm",
        }
    }
}

impl fmt::Display for StartKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of an invoke (HTTP 200 whenever a run was attempted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// `run-` + UUIDv7.
    pub run_id: String,
    /// Equals `run_id`.
    pub execution_id: String,
    /// `success` or `failed`.
    pub status: RunStatus,
    /// Why it failed; omitted on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// 200 on success, 0 on failure.
    pub http_status_code: u16,
    /// `{"Content-Type":"application/json"}` on success, omitted on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<BTreeMap<String, String>>,
    /// The handler's return value, or `{ok:false,error,code}` for a failure.
    pub output: serde_json::Value,
    /// `""` on success.
    pub error_message: String,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
    /// What ran.
    pub function_id: String,
    /// Omitted for the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_path: Option<String>,
    /// What ran.
    pub deployment_version: u64,
    /// What ran.
    pub deployment_id: String,
    /// How the run's runner was started (`cold` when no runner started:
    /// a run that waited in the queue past its timeout, say).
    #[serde(default)]
    pub start_kind: StartKind,
    /// The run's `console.*` calls, in order; only when the invoke asked for
    /// them (`include_logs`), else omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<RunLog>>,
    /// Whether `logs` was cut (by the per-run caps or the runtime's own log
    /// cap); present exactly when `logs` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_truncated: Option<bool>,
}

/// Which stream a captured `console.*` call belongs to: `log`, `info` and
/// `debug` write to stdout, `warn` and `error` to stderr (as in Node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// `console.log`, `console.info`, `console.debug`.
    Stdout,
    /// `console.warn`, `console.error`.
    Stderr,
}

impl LogStream {
    /// The stream Node writes `level` to.
    pub fn of(level: LogLevel) -> Self {
        match level {
            LogLevel::Log | LogLevel::Info | LogLevel::Debug => LogStream::Stdout,
            LogLevel::Warn | LogLevel::Error => LogStream::Stderr,
        }
    }
}

/// One `console.*` call of a run, as returned in [`RunResult::logs`]
/// (field order is the wire order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLog {
    /// `stdout` or `stderr`, from the level.
    pub stream: LogStream,
    /// Console method.
    pub level: LogLevel,
    /// When the call happened (RFC 3339).
    pub time: String,
    /// Arguments formatted like Node's `util.format`.
    pub message: String,
}

/// The body of the worker's `POST /v1/run` (docs/api.md), as sent on the wire.
///
/// Fields are raw: the receiving side validates them into the domain's
/// invoke request exactly as it validates a public invoke. Its `Debug`
/// shows the keys of `env` only.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Collection path; absent or empty = root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_path: Option<String>,
    /// Function name (absent = empty, which validation refuses with `INVALID_NAME`).
    #[serde(default)]
    pub function_name: String,
    /// Input object; absent or `null` = `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// Timeout in ms; absent or <= 0 = the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// Request env.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<serde_json::Value>,
    /// Pinned version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<serde_json::Value>,
    /// Return the run's `console.*` calls in the RunResult (`logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_logs: Option<bool>,
}

impl fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = self.env.as_ref().map(|env| match env {
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.keys()
                    .map(|k| (k.clone(), crate::REDACTED_ENV_VALUE.into()))
                    .collect(),
            ),
            serde_json::Value::Null => serde_json::Value::Null,
            _ => serde_json::Value::String(crate::REDACTED_ENV_VALUE.into()),
        });
        f.debug_struct("RunRequest")
            .field("collection_path", &self.collection_path)
            .field("function_name", &self.function_name)
            .field("input", &self.input)
            .field("timeout_ms", &self.timeout_ms)
            .field("env", &env)
            .field("version", &self.version)
            .field("include_logs", &self.include_logs)
            .finish()
    }
}

/// Level of a captured `console.*` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `console.log`
    Log,
    /// `console.info`
    Info,
    /// `console.warn`
    Warn,
    /// `console.error`
    Error,
    /// `console.debug`
    Debug,
}

impl LogLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Log => "log",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Debug => "debug",
        }
    }
}

/// One captured `console.*` call with its run context (docs/api.md; field order is the wire order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Run id.
    pub run_id: String,
    /// Equals `run_id`.
    pub execution_id: String,
    /// Function name.
    pub function_name: String,
    /// Collection path (`""` for the root).
    pub collection_path: String,
    /// Version that ran.
    pub deployment_version: u64,
    /// Deployment id.
    pub deployment_id: String,
    /// When the call happened (RFC 3339).
    pub ts: String,
    /// Console method.
    pub level: LogLevel,
    /// Arguments formatted like Node's `util.format`.
    pub message: String,
    /// How the run's runner was started.
    #[serde(default)]
    pub start_kind: StartKind,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn function_serialises_like_the_spec() {
        let d = Deployment {
            collection_path: CollectionPath::root(),
            name: FunctionName::parse("hello").unwrap(),
            language: Language::Javascript,
            source_code: "x".into(),
            env: EnvMap::new(),
            version: Version::new(2).unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        };
        let v = serde_json::to_value(Function::from(&d)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "hello", "name": "hello", "language": "javascript", "source_code": "x",
                "created_at": "2026-01-02T03:04:05.000Z", "version": 2, "deployment_id": "hello@v2"
            })
        );
        let nested = Deployment {
            collection_path: CollectionPath::parse("a/b").unwrap(),
            ..d
        };
        assert_eq!(nested.deployment_id(), "a/b/hello@v2");
        let v = serde_json::to_value(Function::from(&nested)).unwrap();
        assert_eq!(v["collection_path"], "a/b");
        assert_eq!(v["id"], "a/b/hello");
    }

    #[test]
    fn env_values_stay_out_of_debug_and_redacted_functions() {
        let d = Deployment {
            collection_path: CollectionPath::root(),
            name: FunctionName::parse("hello").unwrap(),
            language: Language::Javascript,
            source_code: "x".into(),
            env: EnvMap::from_json(&serde_json::json!({"TOKEN": "s3cr3t"})).unwrap(),
            version: Version::FIRST,
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        };
        assert!(!format!("{d:?}").contains("s3cr3t"));
        let f = Function::from(&d);
        assert!(!format!("{f:?}").contains("s3cr3t"));
        assert_eq!(f.env["TOKEN"], "s3cr3t", "responses show values unless redacted");
        let v = serde_json::to_value(f.with_env_redacted()).unwrap();
        assert_eq!(v["env"], serde_json::json!({"TOKEN": "***"}));
        for env in [serde_json::json!({"TOKEN": "s3cr3t"}), serde_json::json!("s3cr3t")] {
            let run = RunRequest {
                collection_path: None,
                function_name: "hello".into(),
                input: None,
                timeout_ms: None,
                env: Some(env),
                version: None,
                include_logs: None,
            };
            let debug = format!("{run:?}");
            assert!(!debug.contains("s3cr3t"), "{debug}");
        }
    }

    #[test]
    fn error_codes_round_trip() {
        for code in ErrorCode::ALL {
            let s = serde_json::to_value(code).unwrap();
            assert_eq!(s, serde_json::json!(code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }
}
