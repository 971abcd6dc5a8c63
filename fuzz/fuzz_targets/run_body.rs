//! The worker's `POST /v1/run` body: no panic; what validates obeys the
//! newtype rules and survives another hop (serialise, read, validate).
#![no_main]
use faas_http::http::parse_json_body;
use faas_http::replies::validate_run;
use faas_ports::RunRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(run) = parse_json_body::<RunRequest>(data, true) else {
        return;
    };
    // The typed body serialises and reads back to itself (absent stays absent).
    let wire = serde_json::to_vec(&run).expect("a run request serialises");
    let again: RunRequest = parse_json_body(&wire, true).expect("a serialised run request reads back");
    let Ok(request) = validate_run(run) else {
        assert!(validate_run(again).is_err(), "validation depends only on the content");
        return;
    };
    let again = validate_run(again).expect("a serialised valid run request validates again");
    assert_eq!(again, request);
    if let Some(timeout) = request.timeout {
        assert!(timeout.as_millis() >= 1);
    }
    assert!(request.version.is_none_or(|v| v.get() >= 1));
});
