//! The browser playground (`ui/`), embedded in the binary and served at
//! `/ui/` by the dispatcher (`LOWCODE_FAAS_UI=false` turns it off).
//!
//! Invariants: only the files of [`FILES`] are ever served (a path is looked
//! up in that table, never joined to a directory, so no traversal and no
//! listing); every answer carries the playground's strict CSP, `nosniff` and
//! `no-referrer`; no token is needed (the page's API calls carry it).

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::ApiError;

/// The playground's Content-Security-Policy (ui/README.md): no inline
/// script or style, API calls to the same origin only, never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../ui/", $path)) as &[u8])),*]
    };
}

/// Every file served under `/ui/`: its path below `ui/` and its bytes.
/// (`ui/README.md` is documentation, not part of the app.)
pub static FILES: &[(&str, &[u8])] = embedded![
    "index.html",
    "app.js",
    "api.js",
    "env.js",
    "style.css",
    "vendor/codemirror/LICENSE",
    "vendor/codemirror/addon/edit/matchbrackets.js",
    "vendor/codemirror/lib/codemirror.css",
    "vendor/codemirror/lib/codemirror.js",
    "vendor/codemirror/mode/javascript/javascript.js",
];

/// The content type of a file by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// The reply to `GET`/`HEAD /ui/{path}` (`""` is `index.html`): the
/// embedded file, or 404 `NOT_FOUND`.
pub fn file(path: &str) -> Result<Response, ApiError> {
    let path = if path.is_empty() { "index.html" } else { path };
    let (name, bytes) = FILES
        .iter()
        .find(|(name, _)| *name == path)
        .ok_or_else(ApiError::not_found)?;
    let mut res = Response::new(bytes.to_vec().into());
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // The app's own files change with the server: never mix old and new
    // modules. The vendored library is versioned by its folder.
    let cache = if name.starts_with("vendor/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(&mut res);
    Ok(res)
}

/// `/ui` → `/ui/` (relative, so it also works under a mount prefix).
pub fn redirect() -> Response {
    let mut res = Response::new(Default::default());
    *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
    res.headers_mut().insert(LOCATION, HeaderValue::from_static("ui/"));
    secure(&mut res);
    res
}

fn secure(res: &mut Response) {
    let h = res.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `ui/` but its README is embedded, and nothing else.
    #[test]
    fn the_table_lists_every_file_of_ui() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.retain(|p| p != "README.md");
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add new ui/ files to ui::FILES");
    }

    #[test]
    fn content_types_and_caching() {
        let check = |path: &str, ctype: &str, cache: &str| {
            let res = file(path).unwrap();
            assert_eq!(res.headers()[CONTENT_TYPE], ctype, "{path}");
            assert_eq!(res.headers()[CACHE_CONTROL], cache, "{path}");
            assert_eq!(res.headers()["content-security-policy"], CSP);
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
            assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        };
        check("", "text/html; charset=utf-8", "no-cache");
        check("index.html", "text/html; charset=utf-8", "no-cache");
        check("app.js", "text/javascript; charset=utf-8", "no-cache");
        check("style.css", "text/css; charset=utf-8", "no-cache");
        check(
            "vendor/codemirror/lib/codemirror.js",
            "text/javascript; charset=utf-8",
            "public, max-age=86400",
        );
        assert_eq!(content_type("logo.png"), "image/png");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        for missing in ["nope.js", "../Cargo.toml", "vendor/", "README.md", "%2e%2e/x"] {
            assert_eq!(file(missing).unwrap_err().status.as_u16(), 404, "{missing}");
        }
    }
}
