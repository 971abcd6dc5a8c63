//! The SSRF policy: which addresses may be connected to, checked on the
//! addresses actually connected to (a resolver that drops refused ones),
//! on IP-literal hosts and on every redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use faas_ports::{BoxError, PortError};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

/// Why the fetcher itself stopped a request. Travels through reqwest as the
/// boxed source of its error and is turned back into a port error by
/// [`map_error`].
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
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
    pub(super) fn to_port_error(&self) -> PortError {
        match self {
            Refusal::Forbidden(message) => PortError::SourceUrlForbidden(message.clone()),
            other => PortError::SourceFetchFailed(other.to_string()),
        }
    }
}

/// Which addresses may be connected to.
#[derive(Debug, Clone)]
pub(super) enum AddressPolicy {
    /// Only addresses outside every refused range (the default).
    PublicOnly,
    /// Everything (`allow_private`).
    Any,
    /// Tests: `PublicOnly`, except these addresses (where the test server
    /// listens), so refusals can be observed on redirect hops.
    #[cfg(test)]
    PublicOnlyExcept(std::sync::Arc<[IpAddr]>),
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
pub(super) fn check_hop(policy: &AddressPolicy, url: &Url) -> Result<(), Refusal> {
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
pub(super) fn redirect_policy(policy: AddressPolicy, max_redirects: usize) -> redirect::Policy {
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
pub(super) struct GuardedResolver {
    pub(super) policy: AddressPolicy,
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
}
