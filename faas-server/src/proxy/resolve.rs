//! Which workers exist: the entries of `LOWCODE_FAAS_WORKER_URL`, each a
//! fixed base URL or a DNS name resolved again every
//! `LOWCODE_FAAS_WORKER_DNS_REFRESH_MS` (a name with N addresses is N
//! workers `http://ADDR:PORT`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::IpAddr;

/// Looks up the addresses of a name (injected so tests need no DNS).
#[async_trait::async_trait]
pub trait Resolve: Send + Sync + Debug + 'static {
    /// Every address `host` resolves to now (empty: none).
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// Bound on one lookup (a slow resolver must not stall the refresh).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The system resolver (`getaddrinfo` through tokio), bounded in time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let addrs = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 0)))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DNS lookup timed out"))??;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP address, or an `https://` URL (TLS checks the name, so it is
    /// used as given): one worker, this base URL.
    Fixed(String),
    /// An `http://` URL naming a host: one worker per address it resolves to.
    Name {
        /// The DNS name.
        host: String,
        /// The port (80 when the URL has none).
        port: u16,
    },
}

impl Target {
    /// Classifies a base URL already validated by the settings
    /// (`http(s)://host[:port]`, no path).
    pub fn of(base: &str) -> Target {
        let Some(rest) = base.strip_prefix("http://") else {
            return Target::Fixed(base.to_owned());
        };
        if rest.starts_with('[') {
            return Target::Fixed(base.to_owned());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().unwrap_or(80)),
            None => (rest, 80),
        };
        if host.parse::<IpAddr>().is_ok() {
            Target::Fixed(base.to_owned())
        } else {
            Target::Name {
                host: host.to_owned(),
                port,
            }
        }
    }
}

/// The base URL of the worker at `ip:port`.
pub fn base_of(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// The last answer for each name, kept when a lookup fails (a DNS outage
/// keeps the workers it last saw; an empty answer empties the name).
#[derive(Debug, Default)]
pub struct Resolved {
    last: BTreeMap<String, Vec<String>>,
}

impl Resolved {
    /// The base URLs of every target now, sorted, without duplicates.
    pub async fn bases(&mut self, targets: &[Target], resolver: &dyn Resolve) -> Vec<String> {
        let mut out = Vec::new();
        for target in targets {
            match target {
                Target::Fixed(base) => out.push(base.clone()),
                Target::Name { host, port } => {
                    let key = format!("{host}:{port}");
                    match resolver.lookup(host).await {
                        Ok(ips) => {
                            let bases: Vec<String> = ips.into_iter().map(|ip| base_of(ip, *port)).collect();
                            if self.last.get(&key) != Some(&bases) {
                                tracing::info!(name = %key, workers = bases.len(), "worker name resolved");
                            }
                            self.last.insert(key.clone(), bases);
                        }
                        Err(e) => {
                            tracing::warn!(name = %key, error = %e, "resolving the worker name failed; keeping its last addresses");
                        }
                    }
                    out.extend(self.last.get(&key).into_iter().flatten().cloned());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_fixed_or_names() {
        let cases = [
            ("http://10.0.0.1:9090", Target::Fixed("http://10.0.0.1:9090".into())),
            ("http://[::1]:9090", Target::Fixed("http://[::1]:9090".into())),
            ("https://w.example:9443", Target::Fixed("https://w.example:9443".into())),
            (
                "http://w.ns.svc.cluster.local:9090",
                Target::Name {
                    host: "w.ns.svc.cluster.local".into(),
                    port: 9090,
                },
            ),
            (
                "http://worker",
                Target::Name {
                    host: "worker".into(),
                    port: 80,
                },
            ),
        ];
        for (base, want) in cases {
            assert_eq!(Target::of(base), want, "{base}");
        }
        assert_eq!(base_of("::1".parse().unwrap(), 1), "http://[::1]:1");
    }

    #[tokio::test]
    async fn the_system_resolver_answers_for_an_address() {
        let ips = SystemResolver.lookup("127.0.0.1").await.unwrap();
        assert_eq!(ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }
}
