//! The async port traits. Every adapter implements one of these; the domain
//! holds them as `Arc<dyn Port>`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, ErrorCode, FunctionName, FunctionSummary, LogEntry, NewVersion,
    PortError, RunId, SourceUrl, StartKind, Version, VersionItem,
};

/// Platform variables of a run's env that change with every run (docs/api.md).
/// A warm runner serves runs whose env differs only in these.
pub const PER_RUN_ENV: [&str; 2] = ["LOWCODE_FAAS_RUN_ID", "LOWCODE_FAAS_EXECUTION_ID"];

/// Where collections and function versions live (`files`, `db_s3`, memory).
///
/// Rules every implementation keeps (checked by the contract suite in
/// `faas-adapters`' `testkit`):
/// - the root collection always exists; creating `a/b/c` creates `a` and `a/b`;
/// - saving allocates the next version atomically: concurrent saves of one
///   function never lose or duplicate a version;
/// - a failed call leaves nothing half-written;
/// - errors are [`PortError`]s by meaning (`CollectionNotFound`, …,
///   `Unavailable { component: Storage }`).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SourceStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a collection (and its missing ancestors) with its env.
    /// `CollectionExists` if the path exists; the root always exists.
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError>;

    /// Every collection below the root, sorted by path.
    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError>;

    /// True when the collection exists (always for the root).
    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError>;

    /// The collection's own env. `CollectionNotFound` if it does not exist.
    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError>;

    /// Replaces the collection's own env. `CollectionNotFound` if it does not exist.
    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError>;

    /// Deletes an empty collection. `CollectionNotEmpty` if it has functions or
    /// sub-collections, `CollectionNotFound` if it does not exist.
    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError>;

    /// Writes a new version of a function (creating the function at version 1).
    /// `CollectionNotFound` if the collection does not exist.
    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError>;

    /// Loads the current version, or a pinned one. `FunctionNotFound`,
    /// `VersionNotFound`, or `VersionNotAvailable` (storage that keeps only
    /// the current version).
    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError>;

    /// The current version and a token that changes whenever what a get of
    /// it would return may have changed (a save, a delete and re-create with
    /// the same number, an edit of the stored files): the cheap check a cache
    /// uses to revalidate. `FunctionNotFound` if there is none.
    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError>;

    /// The functions of one collection (not of its sub-collections), sorted by name.
    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError>;

    /// The stored versions of a function, newest first. `FunctionNotFound` if none.
    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError>;

    /// Deletes every version of a function. `FunctionNotFound` if none.
    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError>;

    /// Answers when the backend is reachable and usable.
    async fn health(&self) -> Result<(), PortError>;

    /// Which versions this store keeps: the store says it, so nothing
    /// outside it (the function cache, the composition root) has to guess.
    fn history(&self) -> crate::VersionHistory;
}

/// The current version of a function and its change token (see
/// [`SourceStore::current_revision`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision {
    /// The current version number.
    pub version: Version,
    /// Opaque; equal tokens mean unchanged content.
    pub token: String,
}

/// Everything a runtime needs for one run. The runtime adds the embedded
/// bootstrap itself; the domain decides everything else. Its `Debug` shows
/// neither the env values nor the source and input.
#[derive(Clone, PartialEq, Eq)]
pub struct RunJob {
    /// The run's id (container label, temp dir name).
    pub run_id: RunId,
    /// Function id, for labels and logs.
    pub function_id: String,
    /// Deployment id, for labels and logs.
    pub deployment_id: String,
    /// The user's ESM module, written as `function.mjs`.
    pub source_code: String,
    /// The serialised input object, written as `input.json`.
    pub input_json: Vec<u8>,
    /// The complete environment of the run (merged user env plus platform
    /// variables). Nothing else from the host reaches the run.
    pub env: BTreeMap<String, String>,
    /// Time left for the run; past it the runtime kills everything it started.
    pub timeout: Duration,
    /// Largest `output.json` accepted, in bytes (the envelope included).
    pub max_output_bytes: u64,
    /// Largest captured log file read back, in bytes. `0`: logs are not
    /// wanted (capture is off): the bootstrap captures nothing and the
    /// runtime does not read the log file.
    pub max_log_bytes: u64,
}

impl std::fmt::Debug for RunJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunJob")
            .field("run_id", &self.run_id)
            .field("function_id", &self.function_id)
            .field("deployment_id", &self.deployment_id)
            .field("source_code_bytes", &self.source_code.len())
            .field("input_json_bytes", &self.input_json.len())
            .field("env", &crate::redact(&self.env))
            .field("timeout", &self.timeout)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("max_log_bytes", &self.max_log_bytes)
            .finish()
    }
}

/// What a finished run left behind: the bootstrap's result envelope and its
/// captured logs, both still raw bytes for the domain to judge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunOutput {
    /// Content of `output.json`.
    pub output_json: Vec<u8>,
    /// Content of the captured log file (NDJSON), possibly empty.
    pub logs: Vec<u8>,
    /// How the runner was started.
    pub start_kind: StartKind,
}

/// A run that produced no result envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// Why (`TIMEOUT`, `OUT_OF_MEMORY`, `EXITED_WITHOUT_OUTPUT`, …).
    pub code: ErrorCode,
    /// A clear message for the caller.
    pub message: String,
    /// Logs captured before the failure, possibly empty.
    pub logs: Vec<u8>,
    /// How the runner was started (`Cold` when none was).
    pub start_kind: StartKind,
}

impl RunFailure {
    /// A failure of a run whose runner started cold (or never started).
    pub fn new(code: ErrorCode, message: impl Into<String>, logs: Vec<u8>) -> Self {
        Self {
            code,
            message: message.into(),
            logs,
            start_kind: StartKind::Cold,
        }
    }
}

/// What a runtime tells about its pool of started runners, for `/readyz`
/// and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeStatus {
    /// `cold`, `prewarm` or `warm`.
    pub execution_mode: &'static str,
    /// The pool, when the runtime keeps one (every mode but `cold`).
    pub pool: Option<PoolStatus>,
}

/// A snapshot of a runtime's pool of started runners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Generic runners the pool keeps started.
    pub prewarm_target: usize,
    /// Generic runners started and waiting for a job now.
    pub prewarm_idle: usize,
    /// Runners being started for the pool now.
    pub launching: usize,
    /// Idle warm runners (specialised for one deployment + env) now.
    pub warm_idle: usize,
    /// Warm runners serving a run now (taken from the idle ones; they count
    /// against the warm caps like idle ones).
    pub warm_busy: usize,
    /// Distinct deployment + env keys with an idle warm runner.
    pub warm_keys: usize,
    /// Runs served by a pool runner (prewarm or warm) since start.
    pub hits: u64,
    /// Runs that found no pool runner and started cold since start.
    pub misses: u64,
    /// Warm runners removed for idling past the TTL or to make room.
    pub evictions: u64,
    /// Pool runners that could not be started since start.
    pub launch_failures: u64,
    /// Why the last start of a pool runner failed, while the pool cannot refill.
    pub last_error: Option<String>,
}

/// Runs one job in isolation (a Docker container, a `node` process).
///
/// Rules every implementation keeps: nothing a run's code started outlives
/// the run, except inside a warm runner kept for later runs of the same
/// deployment with the same env (kill and remove in every other outcome,
/// including a dropped future); a runner never serves two deployments or
/// two envs, and one that timed out, ran out of memory, crashed or broke the
/// protocol is never reused; reads of the result and logs are bounded by the
/// job's limits; the deadline is enforced by killing.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug + 'static {
    /// Runs the job to completion or failure.
    async fn run(&self, job: RunJob) -> Result<RunOutput, RunFailure>;

    /// Answers when the runtime can start runs.
    async fn health(&self) -> Result<(), PortError>;

    /// The execution mode and a snapshot of the pool (cheap, no I/O).
    /// A runtime without a pool answers the default (no pool).
    fn status(&self) -> RuntimeStatus {
        RuntimeStatus {
            execution_mode: "cold",
            pool: None,
        }
    }
}

/// Receives captured function logs. Implementations never block a run for
/// long: a slow backend drops (and counts) instead.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait LogSink: Send + Sync + std::fmt::Debug + 'static {
    /// Hands over the entries of one run, in order.
    async fn emit(&self, entries: &[LogEntry]) -> Result<(), PortError>;
}

/// Fetches a function source from a URL (docs/api.md).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SourceFetcher: Send + Sync + std::fmt::Debug + 'static {
    /// The body of `url` as UTF-8 text. `SourceTooLarge` past `max_bytes`,
    /// `SourceUrlForbidden` for a refused address, `SourceFetchFailed` otherwise.
    async fn fetch(&self, url: &SourceUrl, max_bytes: u64) -> Result<String, PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_job_debug_shows_no_env_value_source_or_input() {
        let job = RunJob {
            run_id: RunId::generate(),
            function_id: "f".into(),
            deployment_id: "f@v1".into(),
            source_code: "const SOURCE_MARK = 1".into(),
            input_json: b"{\"INPUT_MARK\":1}".to_vec(),
            env: BTreeMap::from([("TOKEN".to_owned(), "s3cr3t".to_owned())]),
            timeout: Duration::from_secs(1),
            max_output_bytes: 1,
            max_log_bytes: 0,
        };
        let debug = format!("{job:?}");
        for hidden in ["s3cr3t", "SOURCE_MARK", "INPUT_MARK"] {
            assert!(!debug.contains(hidden), "{debug}");
        }
        assert!(debug.contains("TOKEN") && debug.contains("f@v1"), "{debug}");
    }
}
