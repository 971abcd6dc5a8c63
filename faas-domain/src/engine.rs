//! The facade: one [`Engine`] holding the ports and the limits; every use
//! case is a method on it (see `collections`, `functions`, `invoke`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faas_ports::{
    CollectionPath, ContainerRuntime, LogSink, PortError, RuntimeStatus, SourceFetcher, SourceStore, StartKind,
};

use crate::capacity::Capacity;

/// Limits of one engine (docs/api.md defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted source, in bytes (`LOWCODE_FAAS_MAX_SOURCE_BYTES`).
    pub max_source_bytes: u64,
    /// Largest handler result, in bytes (`LOWCODE_FAAS_MAX_OUTPUT_BYTES`).
    pub max_output_bytes: u64,
    /// Largest captured log of one run, in bytes (`LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES`).
    pub max_log_bytes: u64,
    /// Timeout of an invoke that asks for none (`LOWCODE_FAAS_INVOKE_DEFAULT_TIMEOUT_MS`).
    pub default_timeout: Duration,
    /// Largest timeout an invoke may ask for (`LOWCODE_FAAS_INVOKE_MAX_TIMEOUT_MS`).
    pub max_timeout: Duration,
    /// Runs at once (`LOWCODE_FAAS_MAX_CONCURRENT_RUNS`).
    pub max_concurrent_runs: usize,
    /// Invokes waiting for a slot (`LOWCODE_FAAS_MAX_QUEUED_RUNS`).
    pub max_queued_runs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_source_bytes: 1024 * 1024,
            max_output_bytes: 6 * 1024 * 1024,
            max_log_bytes: 1024 * 1024,
            default_timeout: Duration::from_millis(120_000),
            max_timeout: Duration::from_millis(900_000),
            max_concurrent_runs: 32,
            max_queued_runs: 256,
        }
    }
}

/// Counters the engine keeps for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Runs holding a slot now.
    pub in_flight: usize,
    /// Invokes waiting for a slot now.
    pub queued: usize,
    /// Runs by how their runner was started, since start.
    pub starts: StartCounts,
}

/// Runs by how their runner was started ([`StartKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartCounts {
    /// Runners started for the run.
    pub cold: u64,
    /// Runners taken from the prewarmed pool.
    pub prewarm: u64,
    /// Warm runners reused.
    pub warm: u64,
}

impl StartCounts {
    /// The count of one kind.
    pub fn get(&self, kind: StartKind) -> u64 {
        match kind {
            StartKind::Cold => self.cold,
            StartKind::Prewarm => self.prewarm,
            StartKind::Warm => self.warm,
        }
    }
}

/// Health of the engine's ports.
#[derive(Debug)]
pub struct Health {
    /// The source store's answer.
    pub storage: Result<(), PortError>,
    /// The runtime's answer.
    pub runtime: Result<(), PortError>,
}

/// The lowcode-faas engine: collections, functions and invokes over the ports.
///
/// Build it with [`Engine::builder`]. It is cheap to share (`Arc<Engine>`)
/// and every method takes `&self`.
///
/// ```
/// use std::sync::Arc;
///
/// use faas_adapters::memory::MemorySourceStore;
/// use faas_domain::{CreateFunction, Engine, InvokeRequest, RunInput, SourceSpec};
/// use faas_ports::{
///     async_trait, CollectionPath, ContainerRuntime, EnvMap, FunctionName, Language, PortError, RunFailure,
///     RunJob, RunOutput, RunStatus, StartKind,
/// };
///
/// /// A runtime that answers every run with the same envelope (use
/// /// `faas_adapters::process::ProcessRuntime` or `docker::DockerRuntime` for real runs).
/// #[derive(Debug)]
/// struct Canned;
///
/// #[async_trait]
/// impl ContainerRuntime for Canned {
///     async fn run(&self, job: RunJob) -> Result<RunOutput, RunFailure> {
///         assert_eq!(job.env["LOWCODE_FAAS_FUNCTION_NAME"], "hello");
///         Ok(RunOutput {
///             output_json: br#"{"type":"result","value":{"ok":true,"data":"hi"}}"#.to_vec(),
///             logs: Vec::new(),
///             start_kind: StartKind::Cold,
///         })
///     }
///     async fn health(&self) -> Result<(), PortError> {
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let engine = Engine::builder(Arc::new(MemorySourceStore::new()), Arc::new(Canned)).build();
/// let name = FunctionName::parse("hello")?;
/// let deployment = engine
///     .create_function(CreateFunction {
///         collection_path: CollectionPath::root(),
///         name: name.clone(),
///         language: Language::Javascript,
///         source: SourceSpec::Code("export async function handler() { return { ok: true }; }".into()),
///         env: EnvMap::new(),
///     })
///     .await?;
/// assert_eq!(deployment.deployment_id(), "hello@v1");
///
/// let result = engine
///     .invoke(InvokeRequest {
///         collection_path: CollectionPath::root(),
///         name,
///         input: RunInput::parse(None)?,
///         timeout: Some(std::time::Duration::from_secs(5)),
///         env: EnvMap::new(),
///         version: None,
///         include_logs: false,
///     })
///     .await?;
/// assert_eq!(result.status, RunStatus::Success);
/// assert_eq!(result.output["data"], "hi");
/// # Ok::<(), faas_domain::DomainError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Engine {
    pub(crate) store: Arc<dyn SourceStore>,
    pub(crate) runtime: Arc<dyn ContainerRuntime>,
    pub(crate) fetcher: Option<Arc<dyn SourceFetcher>>,
    pub(crate) log_sink: Option<Arc<dyn LogSink>>,
    pub(crate) limits: Limits,
    pub(crate) capacity: Capacity,
    /// Starts by kind, indexed like [`StartKind::ALL`].
    pub(crate) starts: [AtomicU64; 3],
}

impl Engine {
    /// Starts a builder from the two ports every engine needs.
    pub fn builder(store: Arc<dyn SourceStore>, runtime: Arc<dyn ContainerRuntime>) -> EngineBuilder {
        EngineBuilder {
            store,
            runtime,
            fetcher: None,
            log_sink: None,
            limits: Limits::default(),
        }
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Current counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            in_flight: self.capacity.in_flight(),
            queued: self.capacity.queued(),
            starts: StartCounts {
                cold: self.starts[0].load(Ordering::Relaxed),
                prewarm: self.starts[1].load(Ordering::Relaxed),
                warm: self.starts[2].load(Ordering::Relaxed),
            },
        }
    }

    /// The runtime's execution mode and pool snapshot.
    pub fn runtime_status(&self) -> RuntimeStatus {
        self.runtime.status()
    }

    /// Counts one run start of `kind`.
    pub(crate) fn count_start(&self, kind: StartKind) {
        let index = StartKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.starts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Asks storage and runtime whether they can serve.
    pub async fn health(&self) -> Health {
        Health {
            storage: self.store.health().await,
            runtime: self.runtime.health().await,
        }
    }

    /// `CollectionNotFound` unless the collection exists (the root always does).
    pub(crate) async fn ensure_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        if path.is_root() || self.store.collection_exists(path).await? {
            Ok(())
        } else {
            Err(PortError::CollectionNotFound(path.as_str().to_owned()))
        }
    }
}

/// Builder of an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    store: Arc<dyn SourceStore>,
    runtime: Arc<dyn ContainerRuntime>,
    fetcher: Option<Arc<dyn SourceFetcher>>,
    log_sink: Option<Arc<dyn LogSink>>,
    limits: Limits,
}

impl EngineBuilder {
    /// Enables `source_url` and pull through this fetcher (without one they answer `SOURCE_FETCH_FAILED`).
    pub fn fetcher(mut self, fetcher: Arc<dyn SourceFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Sends captured function logs to this sink (without one they are dropped).
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Replaces the default limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine {
        Engine {
            capacity: Capacity::new(self.limits.max_concurrent_runs, self.limits.max_queued_runs),
            store: self.store,
            runtime: self.runtime,
            fetcher: self.fetcher,
            log_sink: self.log_sink,
            limits: self.limits,
            starts: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}
