//! The value syntaxes: booleans, listen addresses, worker URLs.

use std::net::SocketAddr;

/// `LOWCODE_FAAS_WORKER_URL`: a comma-separated list of base URLs
/// (`http://10.0.0.7:9090,http://worker.ns.svc.cluster.local:9090`), each
/// `http://` or `https://`, a host and an optional port, no user info, path,
/// query or fragment (a trailing `/` is dropped). At least one; duplicates
/// are removed. The reason is the `Err`.
pub fn parse_worker_urls(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let base = item.strip_suffix('/').unwrap_or(item);
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| format!("{item:?} is not an http:// or https:// URL"))?;
        if rest.is_empty() {
            return Err(format!("{item:?} has no host"));
        }
        if let Some(bad) = rest
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
        {
            return Err(format!(
                "{item:?}: expected a base URL (scheme, host, optional port) without {bad:?}"
            ));
        }
        let port = if let Some(v6) = rest.strip_prefix('[') {
            let (_, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{item:?}: unclosed IPv6 address"))?;
            after.strip_prefix(':')
        } else {
            rest.split_once(':').map(|(_, port)| port)
        };
        if rest.starts_with(':') {
            return Err(format!("{item:?} has no host"));
        }
        if let Some(port) = port {
            port.parse::<u16>()
                .map_err(|_| format!("{item:?}: the port must be a number up to 65535"))?;
        }
        if !out.iter().any(|b| b == base) {
            out.push(base.to_owned());
        }
    }
    if out.is_empty() {
        return Err("expected at least one worker base URL".into());
    }
    Ok(out)
}

/// `1/true/yes/on` and `0/false/no/off`, any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `:8080` (all interfaces), `127.0.0.1:0`, `[::1]:8080`, `localhost:8080`.
pub fn parse_listen(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    if let Some(port) = raw.strip_prefix(':') {
        return port.parse::<u16>().ok().map(|p| SocketAddr::from(([0, 0, 0, 0], p)));
    }
    if let Some(port) = raw.strip_prefix("localhost:") {
        return port.parse::<u16>().ok().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    raw.parse().ok()
}
