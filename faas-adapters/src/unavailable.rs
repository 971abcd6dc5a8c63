//! A runtime that can run nothing and says why: used when the configured
//! runtime is not built into this binary, so invokes answer an honest
//! `RUNTIME_UNAVAILABLE` and `/readyz` reports the runtime as failing.

use async_trait::async_trait;
use faas_ports::{Component, ContainerRuntime, ErrorCode, PortError, RunFailure, RunJob, RunOutput};

/// Answers every run with `RUNTIME_UNAVAILABLE`.
#[derive(Debug, Clone)]
pub struct UnavailableRuntime {
    reason: String,
}

impl UnavailableRuntime {
    /// A runtime that fails with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

#[async_trait]
impl ContainerRuntime for UnavailableRuntime {
    async fn run(&self, _job: RunJob) -> Result<RunOutput, RunFailure> {
        Err(RunFailure::new(
            ErrorCode::RuntimeUnavailable,
            self.reason.clone(),
            Vec::new(),
        ))
    }

    async fn health(&self) -> Result<(), PortError> {
        Err(PortError::Unavailable {
            component: Component::Runtime,
            message: self.reason.clone(),
            source: None,
        })
    }
}
