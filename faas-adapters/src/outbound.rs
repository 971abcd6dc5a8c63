//! The proxy of outbound HTTP clients that talk to our own infrastructure
//! (the dispatcher → worker hop, Loki, Elasticsearch, webhooks), from the
//! usual `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` variables (uppercase
//! first, then lowercase), read once with the other settings.
//!
//! Clients apply it with [`OutboundProxy::apply`], which also turns off
//! reqwest's own reading of the process environment, so what a client does
//! is exactly what the settings say (and tests pass variables explicitly).
//! The SSRF-guarded source fetcher never uses a proxy.

use std::fmt;

use crate::AdapterError;

/// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` as set (blank = unset).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OutboundProxy {
    /// Proxy of `http://` URLs (`HTTP_PROXY` / `http_proxy`).
    pub http: Option<String>,
    /// Proxy of `https://` URLs (`HTTPS_PROXY` / `https_proxy`).
    pub https: Option<String>,
    /// Hosts, domains and networks reached directly (`NO_PROXY` / `no_proxy`:
    /// comma-separated; `*` = every host; `.example.com` and `example.com`
    /// match subdomains; IPs and CIDR ranges).
    pub no_proxy: Option<String>,
}

/// Proxy URLs may carry credentials: show only which are set.
impl fmt::Debug for OutboundProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundProxy")
            .field("http", &self.http.as_ref().map(|_| "<set>"))
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl OutboundProxy {
    /// No proxy at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads the variables through `get` (uppercase name first, then lowercase).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |upper: &str| {
            get(upper)
                .or_else(|| get(&upper.to_lowercase()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            http: read("HTTP_PROXY"),
            https: read("HTTPS_PROXY"),
            no_proxy: read("NO_PROXY"),
        }
    }

    /// True when any proxy is set.
    pub fn is_set(&self) -> bool {
        self.http.is_some() || self.https.is_some()
    }

    /// Checks that each proxy is a URL reqwest accepts (the message names
    /// the variable, never the value: it may hold a password).
    pub fn validate(&self) -> Result<(), AdapterError> {
        self.proxies().map(|_| ())
    }

    fn proxies(&self) -> Result<Vec<reqwest::Proxy>, AdapterError> {
        let no_proxy = || self.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        let mut out = Vec::new();
        if let Some(url) = &self.http {
            let proxy = reqwest::Proxy::http(url.as_str())
                .map_err(|_| AdapterError::Config("HTTP_PROXY is not a valid proxy URL".into()))?;
            out.push(proxy.no_proxy(no_proxy()));
        }
        if let Some(url) = &self.https {
            let proxy = reqwest::Proxy::https(url.as_str())
                .map_err(|_| AdapterError::Config("HTTPS_PROXY is not a valid proxy URL".into()))?;
            out.push(proxy.no_proxy(no_proxy()));
        }
        Ok(out)
    }

    /// The builder with these proxies and nothing read from the process
    /// environment behind the settings' back.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, AdapterError> {
        let mut builder = builder.no_proxy();
        for proxy in self.proxies()? {
            builder = builder.proxy(proxy);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> OutboundProxy {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        OutboundProxy::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn reads_uppercase_first_then_lowercase_and_hides_credentials() {
        let p = from(&[
            ("HTTP_PROXY", "http://user:secret@127.0.0.9:3128"),
            ("http_proxy", "http://ignored:1"),
            ("https_proxy", "http://127.0.0.9:3129"),
            ("no_proxy", "localhost, .internal"),
        ]);
        assert_eq!(p.http.as_deref(), Some("http://user:secret@127.0.0.9:3128"));
        assert_eq!(p.https.as_deref(), Some("http://127.0.0.9:3129"));
        assert_eq!(p.no_proxy.as_deref(), Some("localhost, .internal"));
        assert!(p.is_set());
        assert!(!format!("{p:?}").contains("secret"));
        assert!(p.validate().is_ok());
        assert_eq!(from(&[("HTTP_PROXY", "  ")]), OutboundProxy::none());
    }

    #[test]
    fn a_bad_proxy_url_names_the_variable_only() {
        let err = from(&[("HTTPS_PROXY", "http://user:pw@[bad")]).validate().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("HTTPS_PROXY") && !text.contains("pw"), "{text}");
    }
}
