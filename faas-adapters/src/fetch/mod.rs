//! `SourceFetcher` over reqwest, with SSRF protection (docs/api.md).
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
//!   target's: `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (which the worker hop
//!   and the log sinks honour, see `crate::outbound`) are never used here, as
//!   a proxy would connect to addresses this check never sees. A refusal surfaces as `SourceUrlForbidden` naming the address;
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

mod client;
mod policy;
#[cfg(test)]
mod tests;

pub use self::client::{FetchConfig, HttpSourceFetcher};
