//! Routes and percent-decoding of both servers (faas-server router, the
//! worker's table, faas-http's 404/405 rule): no panic; the method check
//! agrees with the path table (a 405's `Allow` is the union over the
//! candidates); a route whose parts are a valid collection
//! path and function name renders back, percent-encoded, to the same route.
#![no_main]
use faas_http::router::RouteSpec;
use faas_ports::{CollectionPath, FunctionName};
use faas_server::fuzzing::{candidates, match_path, route, Playground, Route};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use warp::http::Method;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

/// The parts of a route as a handler validates them, or `None` when a
/// handler would refuse them.
fn valid_cp(cp: &str) -> Option<CollectionPath> {
    CollectionPath::parse(cp).ok().filter(|p| p.as_str() == cp)
}

/// The path of a route whose parts are valid, each segment fully percent-encoded.
fn render(route: &Route) -> Option<String> {
    let cp_prefix = |cp: &Option<String>| -> Option<String> {
        match cp {
            None => Some(String::new()),
            Some(cp) => {
                let path = valid_cp(cp)?;
                let mut out = String::from("/collections");
                for segment in path.segments() {
                    out.push('/');
                    out.push_str(&enc(segment));
                }
                Some(out)
            }
        }
    };
    let function = |cp: &Option<String>, name: &str, tail: &str| -> Option<String> {
        FunctionName::parse(name).ok()?;
        Some(format!("{}/functions/{}{tail}", cp_prefix(cp)?, enc(name)))
    };
    match route {
        Route::Functions(cp) => Some(format!("{}/functions", cp_prefix(cp)?)),
        Route::Function(cp, name) => function(cp, name, ""),
        Route::Versions(cp, name) => function(cp, name, "/versions"),
        Route::Invoke(cp, name) => function(cp, name, "/invoke"),
        Route::Pull(cp, name) => function(cp, name, "/pull"),
        Route::Collection(cp) if !cp.is_empty() => cp_prefix(&Some(cp.clone())),
        Route::CollectionEnv(cp) if !cp.is_empty() => Some(format!("{}/env", cp_prefix(&Some(cp.clone()))?)),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else { return };
    let Ok(path) = std::str::from_utf8(rest) else { return };
    let method = &METHODS[usize::from(m) % METHODS.len()];

    let matched = match_path(path);
    match (&matched, route(method, path, Playground::Served)) {
        (None, Err(err)) => assert_eq!((err.status.as_u16(), err.code), (404, "NOT_FOUND")),
        (None, Ok(r)) => panic!("{path:?} routed to {r:?} without a match"),
        (Some(_), Ok(routed)) => {
            // The first candidate that allows the method.
            let all = candidates(path);
            assert!(all.contains(&routed), "{path:?} routed to {routed:?}, not one of {all:?}");
            let allowed = routed.allowed();
            assert!(allowed.contains(method) || (*method == Method::HEAD && allowed.contains(&Method::GET)));
        }
        (Some(r), Err(err)) => {
            // No candidate allows the method; `Allow` names each method some
            // candidate allows, once, in the candidates' order.
            assert_eq!(err.status.as_u16(), 405, "{path:?} {r:?}");
            let all = candidates(path);
            assert!(all.iter().all(|c| !c.allowed().contains(method)), "{path:?} {all:?}");
            let mut union: Vec<&str> = Vec::new();
            for m in all.iter().flat_map(|c| c.allowed()) {
                if !union.contains(&m.as_str()) {
                    union.push(m.as_str());
                }
            }
            let allow = err.allow.expect("a 405 names what is allowed");
            assert_eq!(allow, union.join(", "), "{path:?} {all:?}");
        }
    }
    // The playground's paths vanish when it is off; every other route stays.
    match (&matched, route(&Method::GET, path, Playground::Off)) {
        (Some(r), Err(err)) if r.is_ui() => assert_eq!(err.status.as_u16(), 404),
        (Some(r), Ok(_)) => assert!(!r.is_ui()),
        _ => {}
    }
    if let Some(r) = &matched {
        assert!(!r.label().is_empty());
        if let Some(rendered) = render(r) {
            assert_eq!(
                match_path(&rendered).as_ref(),
                Some(r),
                "{path:?} rendered as {rendered:?}"
            );
        }
    }

    // The worker's table: exact paths, 404 / 405 by the same rule.
    let worker = faas_worker::Route::match_path(path);
    if let Some(w) = worker {
        assert!(path.trim_end_matches('/').ends_with(w.label()));
        assert_eq!(faas_worker::Route::match_path(w.label()), Some(w));
    }
    match faas_http::router::check_method(method, worker) {
        Ok(w) => assert!(w.allowed().contains(method) || *method == Method::HEAD),
        Err(err) => assert!(matches!(err.status.as_u16(), 404 | 405)),
    }
});
