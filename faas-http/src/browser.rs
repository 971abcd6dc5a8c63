//! What a browser may do with the API (issue #12, #13): the cross-site rule,
//! CORS for configured origins, and the media type of JSON bodies.
//!
//! - A request that changes state or runs code (every method but `GET`,
//!   `HEAD`, `OPTIONS`) that a browser marks as cross-site is refused with
//!   403 `CROSS_ORIGIN_FORBIDDEN` before any work: `Sec-Fetch-Site:
//!   cross-site`, or an `Origin` that is neither the server's own (its
//!   `host[:port]` equals the request's `Host`) nor one of the configured
//!   CORS origins. Requests without `Origin` (curl, SDKs, the worker hop)
//!   pass, as before.
//! - The worker never serves browsers: any `Origin`, or a cross-site
//!   `Sec-Fetch-Site`, is refused there.
//! - An allowed CORS origin gets `Access-Control-Allow-Origin: <origin>` and
//!   `Vary: Origin` on every reply, and its preflight `OPTIONS` is answered
//!   (204) before auth; any other origin gets no CORS header.
//! - A JSON body comes with `Content-Type: application/json`, or none (curl
//!   compatibility), or `application/x-www-form-urlencoded` (what `curl -d`
//!   sends) when the request has no `Origin`; anything else is 415
//!   `UNSUPPORTED_MEDIA_TYPE`. A browser can send `text/plain` or a form
//!   cross-site without a preflight; it always sends `Origin` with them.

use warp::http::header::{HeaderValue, CONTENT_TYPE, HOST, ORIGIN, VARY};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use crate::ApiError;

/// Methods a preflight may ask for.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE";
/// Headers a preflight may ask for.
const ALLOW_HEADERS: &str = "authorization, content-type, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_SECS: &str = "600";

/// Which browser requests a service accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserPolicy {
    /// The dispatcher: its own origin, plus these exact origins with CORS
    /// (`LOWCODE_FAAS_CORS_ORIGINS`, empty by default).
    SameOrigin {
        /// Exact origins (`scheme://host[:port]`) allowed cross-origin.
        cors_origins: Vec<String>,
    },
    /// The worker: no browser at all (any `Origin` is refused).
    NoBrowsers,
}

impl BrowserPolicy {
    /// The request's `Origin` when it is a configured CORS origin.
    pub fn cors_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let BrowserPolicy::SameOrigin { cors_origins } = self else {
            return None;
        };
        let origin = headers.get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        cors_origins.iter().any(|o| o == text).then(|| origin.clone())
    }

    /// Whether replies depend on `Origin` (CORS is configured).
    fn varies(&self) -> bool {
        matches!(self, BrowserPolicy::SameOrigin { cors_origins } if !cors_origins.is_empty())
    }

    /// The cross-site rule for a request (see the module doc).
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("cross-site"));
        let allowed = match self {
            BrowserPolicy::NoBrowsers => !cross_site && headers.get(ORIGIN).is_none(),
            BrowserPolicy::SameOrigin { .. } => match headers.get(ORIGIN) {
                // A configured CORS origin is cross-site by definition.
                Some(_) if self.cors_origin(headers).is_some() => true,
                Some(origin) => !cross_site && is_own_origin(origin, headers),
                None => !cross_site,
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`): 204 with the CORS headers for a
    /// configured origin, else 403 without them.
    pub fn preflight(&self, headers: &HeaderMap) -> Response {
        let Some(origin) = self.cors_origin(headers) else {
            return crate::http::error_reply(&forbidden());
        };
        let mut res = crate::http::no_content();
        let h = res.headers_mut();
        h.insert("access-control-allow-origin", origin);
        h.insert("access-control-allow-methods", HeaderValue::from_static(ALLOW_METHODS));
        h.insert("access-control-allow-headers", HeaderValue::from_static(ALLOW_HEADERS));
        h.insert("access-control-max-age", HeaderValue::from_static(MAX_AGE_SECS));
        h.insert(VARY, HeaderValue::from_static("Origin"));
        res
    }

    /// Adds the CORS headers of `origin` (from [`Self::cors_origin`]) and
    /// `Vary: Origin` when CORS is configured.
    pub fn decorate(&self, origin: Option<HeaderValue>, res: &mut Response) {
        if self.varies() {
            res.headers_mut().insert(VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = origin {
            let h = res.headers_mut();
            h.insert("access-control-allow-origin", origin);
            h.insert(
                "access-control-expose-headers",
                HeaderValue::from_static("x-request-id, retry-after"),
            );
        }
    }
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::OPTIONS && headers.contains_key(ORIGIN) && headers.contains_key("access-control-request-method")
}

/// `Origin` is `http(s)://` + the request's `Host`.
fn is_own_origin(origin: &HeaderValue, headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (origin.to_str().ok(), headers.get(HOST).and_then(|h| h.to_str().ok())) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host.trim()))
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CROSS_ORIGIN_FORBIDDEN",
        "cross-site requests are refused (send no Origin header, or set LOWCODE_FAAS_CORS_ORIGINS)",
    )
}

/// The media-type rule for a JSON body (see the module doc).
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(raw) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = raw
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = match essence.as_str() {
        "application/json" => true,
        "application/x-www-form-urlencoded" => !headers.contains_key(ORIGIN),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be sent with Content-Type: application/json",
        ))
    }
}

/// `LOWCODE_FAAS_CORS_ORIGINS`: comma-separated exact origins
/// (`scheme://host[:port]`, no path, no `*`).
pub fn parse_cors_origins(raw: &str) -> Result<Vec<String>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let rest = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .ok_or_else(|| format!("{o:?} is not an http:// or https:// origin"))?;
            if rest.is_empty() || rest.contains(['/', '*', '?', '#', ' ', '@']) {
                return Err(format!("{o:?} is not an exact origin (scheme://host[:port], no path)"));
            }
            Ok(o.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn dispatcher(origins: &[&str]) -> BrowserPolicy {
        BrowserPolicy::SameOrigin {
            cors_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    /// One row: policy, method, headers → allowed?
    fn check(policy: &BrowserPolicy, method: Method, h: &[(&'static str, &'static str)], want: bool) {
        let got = policy.check(&method, &headers(h));
        assert_eq!(got.is_ok(), want, "{policy:?} {method} {h:?} → {got:?}");
        if let Err(e) = got {
            assert_eq!((e.status.as_u16(), e.code), (403, "CROSS_ORIGIN_FORBIDDEN"));
        }
    }

    #[test]
    fn cross_site_table() {
        let d = dispatcher(&["https://app.example"]);
        let host = ("host", "127.0.0.1:8080");
        check(&d, Method::POST, &[host], true);
        check(&d, Method::POST, &[host, ("origin", "http://127.0.0.1:8080")], true);
        check(&d, Method::POST, &[host, ("origin", "https://127.0.0.1:8080")], true);
        check(&d, Method::POST, &[host, ("origin", "http://evil.example")], false);
        check(&d, Method::POST, &[host, ("origin", "null")], false);
        check(&d, Method::DELETE, &[host, ("origin", "http://127.0.0.1:9999")], false);
        check(&d, Method::POST, &[host, ("sec-fetch-site", "cross-site")], false);
        check(&d, Method::POST, &[host, ("sec-fetch-site", "same-origin")], true);
        check(&d, Method::POST, &[host, ("sec-fetch-site", "same-site")], true);
        check(&d, Method::POST, &[host, ("origin", "https://app.example")], true);
        check(
            &d,
            Method::PUT,
            &[
                host,
                ("origin", "https://app.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            true,
        );
        check(&d, Method::GET, &[host, ("origin", "http://evil.example")], true);
        check(&d, Method::POST, &[("origin", "http://127.0.0.1:8080")], false);
        let w = BrowserPolicy::NoBrowsers;
        check(&w, Method::POST, &[host], true);
        check(&w, Method::POST, &[host, ("origin", "http://127.0.0.1:8080")], false);
        check(&w, Method::POST, &[host, ("sec-fetch-site", "cross-site")], false);
    }

    #[test]
    fn content_types() {
        let ok = |h: &[(&'static str, &'static str)]| check_json_content_type(&headers(h)).is_ok();
        assert!(ok(&[]));
        assert!(ok(&[("content-type", "application/json")]));
        assert!(ok(&[("content-type", "Application/JSON; charset=utf-8")]));
        assert!(ok(&[("content-type", "application/x-www-form-urlencoded")]));
        assert!(!ok(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "http://a")
        ]));
        assert!(!ok(&[("content-type", "text/plain")]));
        assert!(!ok(&[("content-type", "multipart/form-data; boundary=x")]));
        let e = check_json_content_type(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (415, "UNSUPPORTED_MEDIA_TYPE"));
    }

    #[test]
    fn cors_origins_are_exact() {
        assert_eq!(
            parse_cors_origins(" https://a.example , http://b:8080,").unwrap(),
            ["https://a.example", "http://b:8080"]
        );
        assert_eq!(parse_cors_origins("").unwrap(), Vec::<String>::new());
        for bad in ["*", "a.example", "https://a.example/", "https://*.a", "ftp://a"] {
            assert!(parse_cors_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn preflights() {
        let d = dispatcher(&["https://app.example"]);
        let res = d.preflight(&headers(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ]));
        assert_eq!(res.status(), 204);
        assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example");
        assert_eq!(
            res.headers()["access-control-allow-headers"],
            "authorization, content-type, x-request-id"
        );
        let res = d.preflight(&headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ]));
        assert_eq!(res.status(), 403);
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
}
