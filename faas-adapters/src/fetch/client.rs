//! The HTTP client: reqwest with the SSRF policy plugged in, one overall
//! timeout, a streamed size cap, and the one translation of its errors.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::report::{find_cause, root_cause};
use faas_ports::{PortError, SourceFetcher, SourceUrl};
use reqwest::StatusCode;
use url::Url;

use super::policy::{check_hop, redirect_policy, AddressPolicy, GuardedResolver, Refusal};
use crate::AdapterError;

/// Settings of [`HttpSourceFetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Allow every address, private ones included
    /// (`LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE`). Off by default.
    pub allow_private: bool,
    /// Bound on the whole fetch, body included. 60 s by default.
    pub timeout: Duration,
    /// Most redirects followed. 5 by default.
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(60),
            max_redirects: 5,
        }
    }
}

impl FetchConfig {
    /// Checks every setting (the one place they are checked:
    /// [`HttpSourceFetcher::new`] calls it).
    pub fn validate(&self) -> Result<(), AdapterError> {
        if self.timeout.is_zero() {
            return Err(AdapterError::Config(
                "source fetch timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }
}

/// Fetches function sources over HTTP(S) with the rules of docs/api.md.
#[derive(Debug, Clone)]
pub struct HttpSourceFetcher {
    client: reqwest::Client,
    policy: AddressPolicy,
    timeout: Duration,
}

impl HttpSourceFetcher {
    /// Builds the HTTP client. Fails on a zero timeout or when the TLS
    /// backend cannot be set up.
    pub fn new(config: FetchConfig) -> Result<Self, AdapterError> {
        let policy = if config.allow_private {
            AddressPolicy::Any
        } else {
            AddressPolicy::PublicOnly
        };
        Self::with_policy(&config, policy)
    }

    pub(super) fn with_policy(config: &FetchConfig, policy: AddressPolicy) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .redirect(redirect_policy(policy.clone(), config.max_redirects))
            .referer(false)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("lowcode-faas/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AdapterError::Config(format!("source fetch HTTP client: {e}")))?;
        Ok(Self {
            client,
            policy,
            timeout: config.timeout,
        })
    }

    async fn fetch_bounded(&self, url: &Url, max_bytes: u64) -> Result<String, PortError> {
        check_hop(&self.policy, url).map_err(|refusal| refusal.to_port_error())?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| map_error(e, url))?;
        let status = response.status();
        let host = response.url().host_str().unwrap_or_default().to_owned();
        tracing::debug!(host = %host, status = status.as_u16(), "source server answered");
        if status != StatusCode::OK {
            return Err(PortError::SourceFetchFailed(format!("status {status} from '{host}'")));
        }
        if response.content_length().is_some_and(|len| len > max_bytes) {
            return Err(PortError::SourceTooLarge { limit: max_bytes });
        }

        let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let expected = response
            .content_length()
            .and_then(|len| usize::try_from(len).ok())
            .unwrap_or(0);
        let mut body = Vec::with_capacity(expected.min(limit).min(INITIAL_BUFFER_MAX));
        while let Some(chunk) = response.chunk().await.map_err(|e| map_error(e, url))? {
            if chunk.len() > limit.saturating_sub(body.len()) {
                return Err(PortError::SourceTooLarge { limit: max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|e| {
            PortError::SourceFetchFailed(format!(
                "body from '{host}' is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ))
        })
    }
}

/// Largest buffer reserved up front from a `Content-Length`.
const INITIAL_BUFFER_MAX: usize = 1 << 20;

#[async_trait]
impl SourceFetcher for HttpSourceFetcher {
    async fn fetch(&self, url: &SourceUrl, max_bytes: u64) -> Result<String, PortError> {
        let host = url.url().host_str().unwrap_or_default();
        tracing::debug!(host = %host, max_bytes, "fetching source");
        let result = match tokio::time::timeout(self.timeout, self.fetch_bounded(url.url(), max_bytes)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(PortError::SourceFetchFailed(format!(
                "timed out after {:?} fetching from '{host}'",
                self.timeout
            ))),
        };
        match &result {
            Ok(body) => {
                tracing::info!(host = %host, status = 200, bytes = body.len(), "source fetched")
            }
            Err(e) => {
                tracing::info!(host = %host, code = e.code(), error = %faas_ports::report::Report(e), "source fetch failed")
            }
        }
        result
    }
}

/// The one translation of reqwest errors into port errors. A refusal of
/// ours (resolver or redirect policy) is found in the error's source chain.
fn map_error(error: reqwest::Error, requested: &Url) -> PortError {
    if let Some(refusal) = find_cause::<Refusal>(&error) {
        return refusal.to_port_error();
    }
    // The error's own URL (after redirects) when it has one, else the one asked for.
    let host = error
        .url()
        .and_then(Url::host_str)
        .or_else(|| requested.host_str())
        .unwrap_or_default()
        .to_owned();
    // The innermost error names the actual failure ("Connection refused").
    let root = root_cause(&error);
    let message = if error.is_timeout() {
        format!("timed out fetching from '{host}'")
    } else if error.is_connect() {
        format!("could not connect to '{host}': {root}")
    } else if error.is_redirect() {
        format!("redirect from '{host}' failed: {root}")
    } else if error.is_body() || error.is_decode() {
        format!("reading the body from '{host}' failed: {root}")
    } else {
        format!("request to '{host}' failed: {root}")
    };
    PortError::SourceFetchFailed(message)
}
