//! Who can reach a server without a token: the worker refuses to start on a
//! non-loopback address without `LOWCODE_FAAS_WORKER_TOKEN` unless
//! `LOWCODE_FAAS_ALLOW_UNAUTHENTICATED=true` (then it warns); the
//! dispatcher warns when its API is open beyond loopback without
//! `LOWCODE_FAAS_API_TOKEN`, and when it forwards runs to workers without
//! `LOWCODE_FAAS_WORKER_TOKEN` (a worker without one accepts runs from
//! anyone who reaches it). Checked before binding.

use std::net::{IpAddr, SocketAddr};

use crate::{ServerError, Settings};

/// True when only this machine can reach `addr` (`127.0.0.0/8`, `::1`,
/// `::ffff:127.x.y.z`); the unspecified address (`0.0.0.0`, `::`) listens on
/// every interface and is not.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The worker's rule: `Err` (a configuration error naming the variables)
/// for a non-loopback `LOWCODE_FAAS_WORKER_LISTEN` without a worker token,
/// unless unauthenticated access is allowed, which is warned about.
pub fn check_worker(settings: &Settings) -> Result<(), ServerError> {
    let addr = settings.worker_listen;
    if settings.worker_token.is_some() || is_loopback(&addr) {
        return Ok(());
    }
    if settings.allow_unauthenticated {
        tracing::warn!(
            %addr,
            "SECURITY: the worker listens on a non-loopback address without LOWCODE_FAAS_WORKER_TOKEN \
             (LOWCODE_FAAS_ALLOW_UNAUTHENTICATED=true): anyone who can reach it can run code with POST /v1/run."
        );
        return Ok(());
    }
    Err(ServerError::Config(format!(
        "refusing to start: LOWCODE_FAAS_WORKER_LISTEN={addr} is not a loopback address and \
         LOWCODE_FAAS_WORKER_TOKEN is not set, so anyone who can reach it could run code. Set \
         LOWCODE_FAAS_WORKER_TOKEN (and the same on the dispatcher), listen on 127.0.0.1, or set \
         LOWCODE_FAAS_ALLOW_UNAUTHENTICATED=true to accept the risk"
    )))
}

/// The dispatcher's warnings, logged at start-up (before binding); returned
/// for tests.
pub fn warn_dispatcher(settings: &Settings) -> Vec<&'static str> {
    let mut warnings = Vec::new();
    if settings.api_token.is_none() && !is_loopback(&settings.listen) {
        let message = "SECURITY: the API listens on a non-loopback address without LOWCODE_FAAS_API_TOKEN: \
                       anyone who can reach it can deploy and run code.";
        tracing::warn!(addr = %settings.listen, "{message}");
        warnings.push(message);
    }
    if settings.worker_token.is_none() && !settings.worker_urls.is_empty() {
        let message = "SECURITY: runs are forwarded to workers without LOWCODE_FAAS_WORKER_TOKEN: \
                       anyone who can reach a worker can run code on it.";
        tracing::warn!(workers = %settings.worker_urls.join(","), "{message}");
        warnings.push(message);
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).unwrap()
    }

    #[test]
    fn loopback_addresses() {
        for yes in ["127.0.0.1:1", "127.0.0.5:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            assert!(is_loopback(&yes.parse().unwrap()), "{yes}");
        }
        for no in ["0.0.0.0:1", "[::]:1", "10.0.0.7:1", "192.0.2.1:1"] {
            assert!(!is_loopback(&no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn the_worker_needs_a_token_or_an_explicit_allowance_beyond_loopback() {
        assert!(check_worker(&settings(&[("LOWCODE_FAAS_WORKER_LISTEN", "127.0.0.1:0")])).is_ok());
        let open = settings(&[]);
        let err = check_worker(&open).unwrap_err().to_string();
        for want in [
            "LOWCODE_FAAS_WORKER_LISTEN=0.0.0.0:9090",
            "LOWCODE_FAAS_WORKER_TOKEN",
            "LOWCODE_FAAS_ALLOW_UNAUTHENTICATED",
        ] {
            assert!(err.contains(want), "{err} should name {want}");
        }
        let mut with_token = open.clone();
        with_token.worker_token = Some(Secret::new("t"));
        assert!(check_worker(&with_token).is_ok());
        assert!(check_worker(&settings(&[("LOWCODE_FAAS_ALLOW_UNAUTHENTICATED", "true")])).is_ok());
    }

    #[test]
    fn the_dispatcher_warns_about_open_api_and_worker_hops() {
        assert!(warn_dispatcher(&settings(&[("LOWCODE_FAAS_LISTEN", "127.0.0.1:0")])).is_empty());
        assert_eq!(warn_dispatcher(&settings(&[])).len(), 1);
        assert!(warn_dispatcher(&settings(&[("LOWCODE_FAAS_API_TOKEN", "t")])).is_empty());
        let hop = settings(&[
            ("LOWCODE_FAAS_LISTEN", "127.0.0.1:0"),
            ("LOWCODE_FAAS_WORKER_URL", "http://127.0.0.2:9090"),
        ]);
        let warnings = warn_dispatcher(&hop);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("LOWCODE_FAAS_WORKER_TOKEN"));
        let mut tokened = hop.clone();
        tokened.worker_token = Some(Secret::new("t"));
        assert!(warn_dispatcher(&tokened).is_empty());
    }
}
