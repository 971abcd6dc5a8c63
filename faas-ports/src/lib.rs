//! # faas-ports
//!
//! The vocabulary of lowcode-faas and the contracts between its parts:
//!
//! - **validated newtypes** ([`FunctionName`], [`CollectionPath`],
//!   [`EnvMap`], [`Version`], [`RunId`], [`SourceUrl`]), built only through
//!   `parse`, so code that holds one never re-checks it;
//! - **contract types** ([`Deployment`], [`Function`], [`RunResult`],
//!   [`LogEntry`] …) with the exact serde shapes of the API;
//! - **port traits** ([`SourceStore`], [`ContainerRuntime`], [`LogSink`],
//!   [`SourceFetcher`]), `#[async_trait]`, used as `Arc<dyn Port>`;
//! - one error enum, [`PortError`], sorted by meaning, each variant with a
//!   stable machine code, and [`report`], the one walk over an error's
//!   cause chain.
//!
//! Invariants: this crate does no I/O and knows nothing about HTTP, SQL,
//! Docker, S3 or files. No adapter type appears in a signature here. With
//! the `mock` feature every port has a mockall mock (`MockSourceStore` …).
#![warn(missing_docs)]

mod env;
mod error;
mod model;
mod names;
mod ports;
pub mod report;

pub use env::{
    redact, EnvMap, MAX_ENV_ENTRIES, MAX_ENV_KEY_LEN, MAX_ENV_VALUE_LEN, MAX_SEALED_ENV_VALUE_LEN, REDACTED_ENV_VALUE,
    RESERVED_ENV_PREFIX, RUNTIME_ENV_NAMES, RUNTIME_ENV_PREFIXES, SEALED_ENV_PREFIX,
};
pub use error::{BoxError, Component, PortError};
pub use model::{
    deployment_id, function_id, serialize_timestamp, CollectionInfo, Deployment, ErrorCode, Function, FunctionListItem,
    FunctionSummary, LogEntry, LogLevel, LogStream, NewVersion, RunLog, RunRequest, RunResult, RunStatus, StartKind,
    VersionHistory, VersionItem,
};
pub use names::{
    CollectionPath, FunctionName, Language, RunId, SourceUrl, Version, MAX_COLLECTION_PATH_LEN,
    MAX_COLLECTION_SEGMENTS, MAX_FUNCTION_NAME_LEN, MAX_STORED_FUNCTION_NAME_LEN, RESERVED_SEGMENTS,
};
pub use ports::{
    ContainerRuntime, LogSink, PoolStatus, Revision, RunFailure, RunJob, RunOutput, RuntimeStatus, SourceFetcher,
    SourceStore, PER_RUN_ENV,
};

#[cfg(any(test, feature = "mock"))]
pub use ports::{MockContainerRuntime, MockLogSink, MockSourceFetcher, MockSourceStore};

/// Re-exported so that users of the mocks and of [`SourceStore`] need no direct dependency.
pub use async_trait::async_trait;
