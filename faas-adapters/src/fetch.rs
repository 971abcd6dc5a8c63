//! `SourceFetcher` over reqwest, with SSRF protection (SPEC §10).
//!
//! What a fetch guarantees:
//! - only `http`/`https`, on the first URL and on every redirect hop; a
//!   redirect to another scheme fails with `SourceFetchFailed` (the caller's
//!   URL was valid, the remote server misbehaved);
//! - at most [`FetchConfig::max_redirects`] redirects (more → `SourceFetchFailed`);
//! - unless [`FetchConfig::allow_private`], no connection is ever made to a
//!   refused address (loopback, private, link-local, unique-local, CGNAT,
//!   unspecified, multicast, broadcast, documentation, benchmarking, reserved,
//!   and IPv6 forms embedding such an IPv4 address). The check runs on the
//!   addresses actually connected to: hostnames go through `GuardedResolver`,
//!   which drops refused addresses and fails when none is left; IP-literal
//!   hosts (which never reach a resolver) are checked on the first URL and in
//!   the redirect policy. Proxies are disabled so the connected address is the
//!   target's. A refusal surfaces as `SourceUrlForbidden` naming the address;
//! - status 200 only, else `SourceFetchFailed("status 404 Not Found …")`;
//! - at most `max_bytes` of body: refused up front on a larger
//!   `Content-Length`, otherwise counted while streaming → `SourceTooLarge`.
//!   No content decoding is enabled, so the count is of bytes on the wire;
//! - the body is UTF-8, else `SourceFetchFailed`;
//! - the whole fetch (resolution, connect, redirects, body) is bounded by
//!   [`FetchConfig::timeout`] → `SourceFetchFailed("timed out …")`.
//!
//! Logs carry the host and status, never the full URL (query strings may hold
//! tokens) nor the body.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{BoxError, PortError, SourceFetcher, SourceUrl};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use reqwest::StatusCode;
use url::{Host, Url};

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

/// Fetches function sources over HTTP(S) with the rules of SPEC §10.
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

    fn with_policy(config: &FetchConfig, policy: AddressPolicy) -> Result<Self, AdapterError> {
        if config.timeout.is_zero() {
            return Err(AdapterError::Config(
                "source fetch timeout must be greater than zero".into(),
            ));
        }
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
        let mut response = self.client.get(url.clone()).send().await.map_err(map_error)?;
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
        while let Some(chunk) = response.chunk().await.map_err(map_error)? {
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
                tracing::info!(host = %host, code = e.code(), error = %e, "source fetch failed")
            }
        }
        result
    }
}

/// The one translation of reqwest errors into port errors. A refusal of
/// ours (resolver or redirect policy) is found in the error's source chain.
fn map_error(error: reqwest::Error) -> PortError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return refusal.to_port_error();
        }
        cause = current.source();
    }
    let host = error.url().and_then(Url::host_str).unwrap_or_default().to_owned();
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

/// The innermost error of a chain, which names the actual failure
/// ("Connection refused") rather than the layer that saw it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Why the fetcher itself stopped a request. Travels through reqwest as the
/// boxed source of its error and is turned back into a port error by
/// [`map_error`].
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// An address in a refused range (the message names it).
    #[error("{0}")]
    Forbidden(String),
    /// A redirect to a scheme other than http or https.
    #[error("redirect to scheme '{0}' is not allowed (http or https only)")]
    Scheme(String),
    /// A URL without a host.
    #[error("redirect to a URL without a host")]
    NoHost,
    /// More redirects than allowed.
    #[error("too many redirects (at most {0})")]
    TooManyRedirects(usize),
}

impl Refusal {
    fn to_port_error(&self) -> PortError {
        match self {
            Refusal::Forbidden(message) => PortError::SourceUrlForbidden(message.clone()),
            other => PortError::SourceFetchFailed(other.to_string()),
        }
    }
}

/// Which addresses may be connected to.
#[derive(Debug, Clone)]
enum AddressPolicy {
    /// Only addresses outside every refused range (the default).
    PublicOnly,
    /// Everything (`allow_private`).
    Any,
    /// Tests: `PublicOnly`, except these addresses (where the test server
    /// listens), so refusals can be observed on redirect hops.
    #[cfg(test)]
    PublicOnlyExcept(Arc<[IpAddr]>),
}

impl AddressPolicy {
    fn check(&self, ip: IpAddr) -> Result<(), RefusedRange> {
        match self {
            AddressPolicy::Any => Ok(()),
            AddressPolicy::PublicOnly => refused_range(ip).map_or(Ok(()), Err),
            #[cfg(test)]
            AddressPolicy::PublicOnlyExcept(exempt) if exempt.contains(&ip) => Ok(()),
            #[cfg(test)]
            AddressPolicy::PublicOnlyExcept(_) => refused_range(ip).map_or(Ok(()), Err),
        }
    }
}

/// The checks on one URL of a chain that need no resolution: scheme, and the
/// address when the host is an IP literal (hostnames are checked by
/// [`GuardedResolver`] when connecting).
fn check_hop(policy: &AddressPolicy, url: &Url) -> Result<(), Refusal> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(Refusal::Scheme(other.to_owned())),
    }
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        // The URL parser turns every IP form into `Host::Ipv4/Ipv6`; this
        // is a second guard in case a domain still parses as an address.
        Some(Host::Domain(domain)) => match domain.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(()),
        },
        None => return Err(Refusal::NoHost),
    };
    policy
        .check(ip)
        .map_err(|range| Refusal::Forbidden(format!("address {ip} is {range}")))
}

/// Counts hops and runs [`check_hop`] on each redirect target.
fn redirect_policy(policy: AddressPolicy, max_redirects: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        // `previous` holds the first URL and every URL redirected to so far.
        if attempt.previous().len() > max_redirects {
            return attempt.error(Refusal::TooManyRedirects(max_redirects));
        }
        match check_hop(&policy, attempt.url()) {
            Ok(()) => {
                tracing::debug!(
                    host = attempt.url().host_str().unwrap_or_default(),
                    status = attempt.status().as_u16(),
                    "following redirect"
                );
                attempt.follow()
            }
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// Resolves hostnames with the system resolver and keeps only the allowed
/// addresses; when none is left the error is a [`Refusal::Forbidden`] naming
/// the refused ones.
#[derive(Debug)]
struct GuardedResolver {
    policy: AddressPolicy,
}

/// How many refused addresses an error message lists.
const LISTED_ADDRESSES: usize = 4;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut refused: Vec<String> = Vec::new();
            for addr in resolved {
                match policy.check(addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(range) => refused.push(format!("{} ({range})", addr.ip())),
                }
            }
            tracing::debug!(
                host = %host,
                allowed = allowed.len(),
                refused = refused.len(),
                "resolved source host"
            );
            if allowed.is_empty() && !refused.is_empty() {
                let more = refused.len().saturating_sub(LISTED_ADDRESSES);
                refused.truncate(LISTED_ADDRESSES);
                let mut message = format!(
                    "host '{host}' resolves only to refused addresses: {}",
                    refused.join(", ")
                );
                if more > 0 {
                    message.push_str(&format!(" and {more} more"));
                }
                return Err(Box::new(Refusal::Forbidden(message)) as BoxError);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok::<Addrs, BoxError>(addrs)
        })
    }
}

/// A refused address range: its name and, for IPv6 forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4), the embedded address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RefusedRange {
    name: &'static str,
    embedded: Option<Ipv4Addr>,
}

impl fmt::Display for RefusedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => f.write_str(self.name),
            Some(v4) => write!(f, "{} (embedded IPv4 {v4})", self.name),
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IPv4 ranges that are not publicly routable (IANA special-purpose registry),
/// first match wins.
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 32), "unspecified"),
    (v4(0, 0, 0, 0, 8), "this-network (0.0.0.0/8)"),
    (v4(10, 0, 0, 0, 8), "private (10.0.0.0/8)"),
    (v4(100, 64, 0, 0, 10), "shared/CGNAT (100.64.0.0/10)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private (172.16.0.0/12)"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments (192.0.0.0/24)"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private (192.168.0.0/16)"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// IPv6 prefixes whose last 32 bits are an IPv4 address the traffic reaches.
const EMBEDDING_V6: &[Ipv6Net] = &[
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),    // IPv4-mapped
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96),         // IPv4-compatible (deprecated)
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),    // IPv4-translated (SIIT)
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), // NAT64 well-known prefix
];

/// 6to4: the IPv4 address sits in bits 16..48.
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// IPv6 ranges refused outright, first match wins.
const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "NAT64 local-use"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments (2001::/23: Teredo, benchmarking, ORCHID)",
    ),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local (deprecated)"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Global unicast; everything else left after [`REFUSED_V6`] is reserved.
const GLOBAL_UNICAST_V6: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The refused range `ip` falls in, `None` for a public address.
fn refused_range(ip: IpAddr) -> Option<RefusedRange> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip).map(|name| RefusedRange { name, embedded: None }),
        IpAddr::V6(ip) => refused_v6(ip),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

fn refused_v6(ip: Ipv6Addr) -> Option<RefusedRange> {
    let named = |name| RefusedRange { name, embedded: None };
    // `::` and `::1` sit inside the IPv4-compatible prefix; name them first.
    if ip.is_unspecified() {
        return Some(named("unspecified"));
    }
    if ip.is_loopback() {
        return Some(named("loopback"));
    }
    if let Some(embedded) = embedded_v4(ip) {
        return refused_v4(embedded).map(|name| RefusedRange {
            name,
            embedded: Some(embedded),
        });
    }
    if let Some((_, name)) = REFUSED_V6.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(named(name));
    }
    if !GLOBAL_UNICAST_V6.contains(&ip) {
        return Some(named("reserved (outside 2000::/3)"));
    }
    None
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms
/// that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    if EMBEDDING_V6.iter().any(|net| net.contains(&ip)) {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const SOURCE: &str = "export default async function handler(input) { return input; }\n";
    const LIMIT: u64 = 1024;

    // ---- classifier ----

    fn check_address(raw: &str, refused: bool) {
        let ip: IpAddr = raw.parse().unwrap();
        assert_eq!(refused_range(ip).is_some(), refused, "{raw}: {:?}", refused_range(ip));
    }

    #[test]
    fn refused_addresses() {
        for raw in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.255",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2001:db8::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
            "100::1",
            "4000::1",
        ] {
            check_address(raw, true);
        }
    }

    #[test]
    fn public_addresses() {
        for raw in [
            "8.8.8.8",
            "1.1.1.1",
            "11.0.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            check_address(raw, false);
        }
    }

    #[test]
    fn refusal_names_the_range_and_embedded_address() {
        let range = refused_range("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(range.to_string(), "loopback (embedded IPv4 127.0.0.1)");
        let range = refused_range("100.64.0.1".parse().unwrap()).unwrap();
        assert_eq!(range.to_string(), "shared/CGNAT (100.64.0.0/10)");
    }

    // ---- loopback test server ----

    /// A tiny HTTP/1.1 server with canned routes; counts accepted connections.
    struct TestServer {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
    }

    impl TestServer {
        async fn start(ip: Ipv4Addr) -> Self {
            let listener = TcpListener::bind((ip, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&connections);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, addr.port()));
                }
            });
            Self { addr, connections }
        }

        fn url(&self, path: &str) -> SourceUrl {
            SourceUrl::parse(&format!("http://{}{path}", self.addr)).unwrap()
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    async fn read_request_path(stream: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.lines().next()?;
        line.split(' ').nth(1).map(str::to_owned)
    }

    fn head(status: &str, headers: &[(&str, String)]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    fn full(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = head(status, &[("Content-Length", body.len().to_string())]);
        out.extend_from_slice(body);
        out
    }

    fn redirect_to(location: String) -> Vec<u8> {
        head("302 Found", &[("Location", location), ("Content-Length", "0".into())])
    }

    async fn serve(mut stream: TcpStream, port: u16) {
        let Some(path) = read_request_path(&mut stream).await else {
            return;
        };
        let big = vec![b'a'; 4 * LIMIT as usize];
        let response = match path.as_str() {
            "/ok" => full("200 OK", SOURCE.as_bytes()),
            "/missing" => full("404 Not Found", b"no such source"),
            "/not-utf8" => full("200 OK", b"ok \xff\xfe"),
            "/declared-big" => {
                // Announces more than the limit and sends nothing.
                head("200 OK", &[("Content-Length", "10000000".into())])
            }
            "/close-big" => {
                // No length at all: the body ends when the connection closes.
                let mut out = head("200 OK", &[]);
                out.extend_from_slice(&big);
                out
            }
            "/chunked-big" => {
                let mut out = head("200 OK", &[("Transfer-Encoding", "chunked".into())]);
                for piece in big.chunks(256) {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
            "/slow" => {
                // Headers and part of the body, then nothing until the client
                // goes away.
                let mut out = head("200 OK", &[("Content-Length", "1000".into())]);
                out.extend_from_slice(b"export ");
                let _ = stream.write_all(&out).await;
                let mut sink = [0u8; 64];
                let _ = stream.read(&mut sink).await;
                return;
            }
            "/to-file" => redirect_to("file:///etc/passwd".into()),
            other => {
                if let Some(hops) = other.strip_prefix("/hop/") {
                    match hops.parse::<u32>() {
                        Ok(0) => full("200 OK", SOURCE.as_bytes()),
                        Ok(n) => redirect_to(format!("/hop/{}", n - 1)),
                        Err(_) => full("400 Bad Request", b""),
                    }
                } else if let Some(scheme) = other.strip_prefix("/to-scheme/") {
                    redirect_to(format!("{scheme}://127.0.0.1:{port}/etc/passwd"))
                } else if let Some(rest) = other.strip_prefix("/to/") {
                    // `/to/<host>/<path>` → `http://<host>:<this port>/<path>`
                    let (host, target) = rest.split_once('/').unwrap_or((rest, ""));
                    redirect_to(format!("http://{host}:{port}/{target}"))
                } else {
                    full("404 Not Found", b"")
                }
            }
        };
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    }

    // ---- fetches ----

    fn fetcher(allow_private: bool) -> HttpSourceFetcher {
        HttpSourceFetcher::new(FetchConfig {
            allow_private,
            ..FetchConfig::default()
        })
        .unwrap()
    }

    /// Public-only, except the address the test server listens on.
    fn fetcher_exempting(ip: Ipv4Addr) -> HttpSourceFetcher {
        let exempt: Arc<[IpAddr]> = Arc::new([IpAddr::V4(ip)]);
        HttpSourceFetcher::with_policy(&FetchConfig::default(), AddressPolicy::PublicOnlyExcept(exempt)).unwrap()
    }

    fn assert_fails(result: Result<String, PortError>, code: &str, contains: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(contains), "{err}");
    }

    #[tokio::test]
    async fn fetches_a_200_body() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let body = fetcher(true).fetch(&server.url("/ok"), LIMIT).await.unwrap();
        assert_eq!(body, SOURCE);
    }

    #[tokio::test]
    async fn body_of_exactly_the_limit_is_accepted_one_byte_less_is_not() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let fetcher = fetcher(true);
        let exact = SOURCE.len() as u64;
        assert_eq!(fetcher.fetch(&server.url("/ok"), exact).await.unwrap(), SOURCE);
        let err = fetcher.fetch(&server.url("/ok"), exact - 1).await.unwrap_err();
        assert!(matches!(err, PortError::SourceTooLarge { limit } if limit == exact - 1));
    }

    #[tokio::test]
    async fn non_200_status_fails() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let result = fetcher(true).fetch(&server.url("/missing"), LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "status 404");
    }

    #[tokio::test]
    async fn streamed_body_past_the_limit_is_too_large() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let fetcher = fetcher(true);
        for path in ["/chunked-big", "/close-big"] {
            let err = fetcher.fetch(&server.url(path), LIMIT).await.unwrap_err();
            assert!(
                matches!(err, PortError::SourceTooLarge { limit: LIMIT }),
                "{path}: {err}"
            );
        }
        let body = fetcher.fetch(&server.url("/chunked-big"), 4 * LIMIT).await.unwrap();
        assert_eq!(body.len(), 4 * LIMIT as usize);
    }

    #[tokio::test]
    async fn declared_length_past_the_limit_is_refused_up_front() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let err = fetcher(true)
            .fetch(&server.url("/declared-big"), LIMIT)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::SourceTooLarge { limit: LIMIT }), "{err}");
    }

    #[tokio::test]
    async fn follows_up_to_max_redirects() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let fetcher = fetcher(true);
        assert_eq!(fetcher.fetch(&server.url("/hop/5"), LIMIT).await.unwrap(), SOURCE);
        let result = fetcher.fetch(&server.url("/hop/6"), LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "too many redirects");
    }

    #[tokio::test]
    async fn follows_a_redirect_to_another_loopback_url_when_private_is_allowed() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let body = fetcher(true)
            .fetch(&server.url("/to/localhost/ok"), LIMIT)
            .await
            .unwrap();
        assert_eq!(body, SOURCE);
    }

    #[tokio::test]
    async fn redirect_to_another_scheme_fails() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let fetcher = fetcher(true);
        for scheme in ["ftp", "gopher", "ws"] {
            let url = server.url(&format!("/to-scheme/{scheme}"));
            let result = fetcher.fetch(&url, LIMIT).await;
            assert_fails(result, "SOURCE_FETCH_FAILED", &format!("scheme '{scheme}'"));
        }
        // A `file:` Location is not a redirect target at all for the HTTP
        // stack: the 302 itself comes back, and fails as a status.
        let result = fetcher.fetch(&server.url("/to-file"), LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "status 302");
    }

    #[tokio::test]
    async fn slow_body_times_out() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let fetcher = HttpSourceFetcher::new(FetchConfig {
            allow_private: true,
            timeout: Duration::from_millis(300),
            ..FetchConfig::default()
        })
        .unwrap();
        let result = fetcher.fetch(&server.url("/slow"), LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "timed out");
    }

    #[tokio::test]
    async fn invalid_utf8_fails() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let result = fetcher(true).fetch(&server.url("/not-utf8"), LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "UTF-8");
    }

    #[tokio::test]
    async fn connection_refused_fails() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = SourceUrl::parse(&format!("http://127.0.0.1:{port}/ok")).unwrap();
        let result = fetcher(true).fetch(&url, LIMIT).await;
        assert_fails(result, "SOURCE_FETCH_FAILED", "could not connect");
    }

    #[test]
    fn zero_timeout_is_a_config_error() {
        let err = HttpSourceFetcher::new(FetchConfig {
            timeout: Duration::ZERO,
            ..FetchConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, AdapterError::Config(_)), "{err}");
    }

    // ---- SSRF ----

    #[tokio::test]
    async fn loopback_literal_is_forbidden_without_connecting() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let result = fetcher(false).fetch(&server.url("/ok"), LIMIT).await;
        assert_fails(result, "SOURCE_URL_FORBIDDEN", "127.0.0.1");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn hostname_resolving_to_loopback_is_forbidden() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let url = SourceUrl::parse(&format!("http://localhost:{}/ok", server.addr.port())).unwrap();
        let result = fetcher(false).fetch(&url, LIMIT).await;
        assert_fails(result, "SOURCE_URL_FORBIDDEN", "host 'localhost'");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn ipv4_mapped_loopback_is_forbidden() {
        let server = TestServer::start(Ipv4Addr::LOCALHOST).await;
        let url = SourceUrl::parse(&format!("http://[::ffff:127.0.0.1]:{}/ok", server.addr.port())).unwrap();
        let result = fetcher(false).fetch(&url, LIMIT).await;
        assert_fails(result, "SOURCE_URL_FORBIDDEN", "::ffff:127.0.0.1");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn every_redirect_hop_is_checked() {
        // The server listens on 127.0.0.2, the one address the policy lets
        // through; every redirect goes somewhere else on loopback.
        let server_ip = Ipv4Addr::new(127, 0, 0, 2);
        let server = TestServer::start(server_ip).await;
        let fetcher = fetcher_exempting(server_ip);

        let direct = fetcher.fetch(&server.url("/hop/1"), LIMIT).await.unwrap();
        assert_eq!(direct, SOURCE, "hops within the allowed address are followed");

        for (path, named) in [
            ("/to/127.0.0.1/ok", "address 127.0.0.1 is loopback"),
            ("/to/[::ffff:127.0.0.1]/ok", "::ffff:127.0.0.1"),
            ("/to/[::1]/ok", "address ::1 is loopback"),
            ("/to/localhost/ok", "host 'localhost'"),
            ("/to/169.254.169.254/latest/meta-data", "169.254.169.254"),
        ] {
            let result = fetcher.fetch(&server.url(path), LIMIT).await;
            assert_fails(result, "SOURCE_URL_FORBIDDEN", named);
        }
    }

    #[tokio::test]
    async fn resolver_keeps_allowed_addresses_and_refuses_the_rest() {
        let open = GuardedResolver {
            policy: AddressPolicy::Any,
        };
        let addrs: Vec<SocketAddr> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");

        let guarded = GuardedResolver {
            policy: AddressPolicy::PublicOnly,
        };
        let Err(err) = guarded.resolve("localhost".parse().unwrap()).await else {
            panic!("localhost must be refused");
        };
        assert!(err.downcast_ref::<Refusal>().is_some(), "{err}");
    }
}
