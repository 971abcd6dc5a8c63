//! Talking to the Docker daemon: bollard errors sorted by meaning (the one
//! `map_error`), and the bounded calls the runtime makes (pull, kill,
//! remove).

use std::fmt;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use faas_ports::report::report;
use faas_ports::{Component, ErrorCode, PortError, RunFailure};
use futures_util::StreamExt;

/// Bound on a kill, a removal, and on listing containers.
pub(super) const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a bollard error means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultKind {
    /// The daemon cannot be reached or did not answer in time.
    Unreachable,
    /// The container, image or path does not exist (404).
    NotFound,
    /// The object is in the wrong state (409: not running, removal in progress).
    Conflict,
    /// Anything else the daemon or the client reported.
    Other,
}

/// A bollard error sorted by meaning, with a message for callers.
#[derive(Debug)]
pub(super) struct Fault {
    pub(super) kind: FaultKind,
    pub(super) message: String,
    pub(super) source: Option<BollardError>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Fault {
    pub(super) fn other(message: String) -> Self {
        Fault {
            kind: FaultKind::Other,
            message,
            source: None,
        }
    }

    /// The daemon did not answer within `limit`.
    pub(super) fn silent(limit: Duration) -> Self {
        Fault {
            kind: FaultKind::Unreachable,
            message: format!("the Docker daemon did not answer within {} ms", limit.as_millis()),
            source: None,
        }
    }

    /// Gone already (404) or going (409): fine for a removal or a kill.
    pub(super) fn is_gone(&self) -> bool {
        matches!(self.kind, FaultKind::NotFound | FaultKind::Conflict)
    }

    pub(super) fn into_failure(self, context: &str) -> RunFailure {
        let code = match self.kind {
            FaultKind::Unreachable => ErrorCode::RuntimeUnavailable,
            FaultKind::NotFound | FaultKind::Conflict | FaultKind::Other => ErrorCode::Internal,
        };
        tracing::warn!(error = %self, context, "Docker call failed.");
        RunFailure::new(code, format!("{context}: {}", self.message), Vec::new())
    }

    pub(super) fn into_port_error(self, context: &str) -> PortError {
        let message = format!("{context}: {}", self.message);
        let source = self.source.map(|e| Box::new(e) as faas_ports::BoxError);
        match self.kind {
            FaultKind::Unreachable | FaultKind::NotFound => PortError::Unavailable {
                component: Component::Runtime,
                message,
                source,
            },
            FaultKind::Conflict | FaultKind::Other => PortError::Internal { message, source },
        }
    }
}

/// The one translation of bollard errors.
pub(super) fn map_error(error: BollardError) -> Fault {
    // The whole cause chain: hyper's top-level messages alone say little
    // ("client error (Connect)").
    let (kind, message) = match &error {
        BollardError::DockerResponseServerError { status_code, message } => {
            let kind = match status_code {
                404 => FaultKind::NotFound,
                409 => FaultKind::Conflict,
                _ => FaultKind::Other,
            };
            (kind, message.clone())
        }
        BollardError::DockerStreamError { error } => (FaultKind::Other, error.clone()),
        BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_) => (FaultKind::Unreachable, report(&error)),
        _ => (FaultKind::Other, report(&error)),
    };
    Fault {
        kind,
        message,
        source: Some(error),
    }
}

/// What to do about a missing image, for run errors and `/readyz`.
pub(super) fn missing_image_advice(image: &str) -> String {
    format!(
        "pull {image} on the Docker host, point LOWCODE_FAAS_NODE_DOCKER_IMAGE at a mirror you can pull, \
         or build a local image with scripts/build-node-image.sh"
    )
}

/// Pulls `image` (tag `latest` when it names none), with `credentials`
/// for its registry when there are some.
pub(super) async fn pull_image(
    docker: &Docker,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> Result<(), Fault> {
    let mut options = CreateImageOptionsBuilder::default().from_image(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    if !last.contains(':') && !image.contains('@') {
        options = options.tag("latest");
    }
    let mut progress = std::pin::pin!(docker.create_image(Some(options.build()), None, credentials));
    while let Some(item) = progress.next().await {
        item.map_err(map_error)?;
    }
    Ok(())
}

/// SIGKILLs the container; a container that already stopped is fine.
pub(super) async fn kill_container(docker: &Docker, name: &str) {
    let options = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
    match tokio::time::timeout(CONTROL_TIMEOUT, docker.kill_container(name, Some(options))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let fault = map_error(e);
            if !fault.is_gone() {
                tracing::warn!(error = %fault, "Cannot kill a runner's container.");
            }
        }
        Err(_) => tracing::warn!("Killing a runner's container did not finish in time."),
    }
}

/// Force-removes a container (and its anonymous volumes).
pub(super) async fn remove_container(docker: &Docker, name: &str) -> Result<(), Fault> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match tokio::time::timeout(CONTROL_TIMEOUT, docker.remove_container(name, Some(options))).await {
        Ok(result) => result.map_err(map_error),
        Err(_) => Err(Fault::silent(CONTROL_TIMEOUT)),
    }
}

/// Removes a container, logging what is not "already gone".
pub(super) async fn remove_logged(docker: &Docker, name: &str) {
    match remove_container(docker, name).await {
        Ok(()) => {}
        Err(fault) if fault.is_gone() => {}
        Err(fault) => {
            tracing::warn!(container = %name, error = %fault, "Cannot remove a runner's container; it goes at the next start-up.")
        }
    }
}
