//! The dispatcher's invoke body (`POST …/functions/{name}/invoke`): no
//! panic; what validates is forwarded to a worker (proxy mode) as a
//! `/v1/run` body that the worker validates back into the same request.
#![no_main]
use std::time::Duration;

use faas_http::http::parse_json_body;
use faas_http::replies::validate_run;
use faas_ports::RunRequest;
use faas_server::fuzzing::{forwarded_run, invoke_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for cp in [None, Some("team/api")] {
        let Ok(request) = invoke_body(cp, "hello", None, data) else {
            continue;
        };
        assert_eq!(request.collection_path.as_str(), cp.unwrap_or(""));
        assert_eq!(request.name.as_str(), "hello");
        // The dispatcher forwards the effective timeout: the request's, or a default.
        let timeout = request.timeout.unwrap_or(Duration::from_secs(30));
        let forwarded = forwarded_run(&request, timeout);
        let wire = serde_json::to_vec(&forwarded).expect("a run request serialises");
        let back: RunRequest = parse_json_body(&wire, true).expect("the worker reads the forwarded body");
        let validated = validate_run(back).expect("the worker accepts what the dispatcher validated");
        let mut want = request.clone();
        want.timeout = Some(timeout);
        assert_eq!(validated, want, "forwarded as {}", String::from_utf8_lossy(&wire));
    }
    // `?version=` is read only when the body names none, and is validated.
    let with_query = invoke_body(None, "hello", Some("7"), data);
    if let (Ok(plain), Ok(queried)) = (invoke_body(None, "hello", None, data), &with_query) {
        if plain.version.is_none() {
            assert_eq!(queried.version.map(|v| v.get()), Some(7));
        } else {
            assert_eq!(queried.version, plain.version);
        }
    }
});
