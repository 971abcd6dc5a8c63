//! RunResult validation and classification (docs/api.md).
//!
//! A runtime hands back either the bootstrap's result envelope or a
//! [`RunFailure`]; this module decides what the caller sees.

use std::collections::BTreeMap;

use faas_ports::{Deployment, ErrorCode, RunFailure, RunId, RunOutput, RunResult, RunStatus, StartKind};
use serde_json::{json, Value};

/// What a run came to, before ids and timings are attached.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler returned a valid result (including a business `ok:false`).
    Returned(Value),
    /// The platform could not produce a valid handler result.
    Failed {
        /// Why.
        code: ErrorCode,
        /// A clear message.
        message: String,
    },
}

impl Outcome {
    fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome::Failed {
            code,
            message: message.into(),
        }
    }

    /// The error code, `None` on success.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Outcome::Returned(_) => None,
            Outcome::Failed { code, .. } => Some(*code),
        }
    }
}

/// Codes the bootstrap itself may report in an error envelope.
const BOOTSTRAP_CODES: [ErrorCode; 5] = [
    ErrorCode::HandlerThrow,
    ErrorCode::BadReturn,
    ErrorCode::NoHandler,
    ErrorCode::BadInput,
    ErrorCode::SyntaxError,
];

/// Judges what a runtime returned. `max_output_bytes` bounds the handler's
/// serialised return value.
pub fn classify(outcome: &Result<RunOutput, RunFailure>, max_output_bytes: u64) -> Outcome {
    match outcome {
        Err(failure) => Outcome::failed(failure.code, failure.message.clone()),
        Ok(output) => classify_envelope(&output.output_json, max_output_bytes),
    }
}

fn classify_envelope(raw: &[u8], max_output_bytes: u64) -> Outcome {
    if raw.len() as u64 > max_output_bytes.saturating_add(ENVELOPE_SLACK) {
        return too_large(max_output_bytes);
    }
    let envelope: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::failed(
                ErrorCode::BadReturn,
                format!("output.json is not a valid result envelope: {e}"),
            )
        }
    };
    match envelope.get("type").and_then(Value::as_str) {
        Some("result") => {
            let value = envelope.get("value").cloned().unwrap_or(Value::Null);
            if let Err(message) = validate_return(&value) {
                return Outcome::failed(ErrorCode::BadReturn, message);
            }
            let size = serde_json::to_vec(&value).map(|v| v.len() as u64).unwrap_or(u64::MAX);
            if size > max_output_bytes {
                return too_large(max_output_bytes);
            }
            Outcome::Returned(value)
        }
        Some("error") => {
            let message = envelope
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the function failed")
                .to_owned();
            match envelope.get("code").and_then(Value::as_str).and_then(ErrorCode::parse) {
                Some(code) if BOOTSTRAP_CODES.contains(&code) => Outcome::failed(code, message),
                _ => Outcome::failed(
                    ErrorCode::Internal,
                    format!("bootstrap reported an unknown error: {message}"),
                ),
            }
        }
        _ => Outcome::failed(
            ErrorCode::BadReturn,
            "output.json is not a valid result envelope: missing \"type\"",
        ),
    }
}

/// Bytes the envelope adds around the handler's value (`{"type":"result","value":…}`):
/// runtimes accept `output.json` up to the output limit plus this, and
/// [`classify`] applies the exact limit to the value.
pub const ENVELOPE_SLACK: u64 = 64;

fn too_large(max: u64) -> Outcome {
    Outcome::failed(
        ErrorCode::OutputTooLarge,
        format!("function output is larger than {max} bytes"),
    )
}

/// The handler contract as the Go version accepted it: an object with a
/// boolean `ok`. Everything beside `ok` belongs to the handler, so an
/// `ok:false` without a string `error`, or with a numeric `code`, is a
/// business failure returned exactly as it is.
pub fn validate_return(value: &Value) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "handler must return an object {{ ok: boolean, ... }}, got {}",
            json_type(value)
        ));
    };
    match object.get("ok") {
        Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(format!("'ok' must be a boolean, got {}", json_type(other))),
        None => Err("handler result has no boolean 'ok' field".into()),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Attaches ids and timing to an outcome.
pub fn build(
    run_id: &RunId,
    deployment: &Deployment,
    outcome: Outcome,
    duration_ms: u64,
    start_kind: StartKind,
) -> RunResult {
    let (status, error_code, http_status_code, http_headers, output, error_message) = match outcome {
        Outcome::Returned(value) => (
            RunStatus::Success,
            None,
            200,
            Some(BTreeMap::from([(
                "Content-Type".to_owned(),
                "application/json".to_owned(),
            )])),
            value,
            String::new(),
        ),
        Outcome::Failed { code, message } => (
            RunStatus::Failed,
            Some(code),
            0,
            None,
            json!({"ok": false, "error": message, "code": code.as_str()}),
            message,
        ),
    };
    RunResult {
        run_id: run_id.to_string(),
        execution_id: run_id.to_string(),
        status,
        error_code,
        http_status_code,
        http_headers,
        output,
        error_message,
        duration_ms,
        function_id: deployment.function_id(),
        collection_path: deployment.collection_path.as_option().map(str::to_owned),
        deployment_version: deployment.version.get(),
        deployment_id: deployment.deployment_id(),
        start_kind,
        logs: None,
        logs_truncated: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_output(envelope: Value) -> Result<RunOutput, RunFailure> {
        Ok(RunOutput {
            output_json: serde_json::to_vec(&envelope).unwrap(),
            ..RunOutput::default()
        })
    }

    /// One table row: what the runtime returned → the expected error code (None = success).
    fn check(outcome: Result<RunOutput, RunFailure>, want: Option<ErrorCode>) {
        let got = classify(&outcome, 1024);
        assert_eq!(got.error_code(), want, "outcome {outcome:?} → {got:?}");
    }

    #[test]
    fn classification_table() {
        check(ok_output(json!({"type": "result", "value": {"ok": true}})), None);
        check(
            ok_output(json!({"type": "result", "value": {"ok": true, "data": [1, 2]}})),
            None,
        );
        check(
            ok_output(json!({"type": "result", "value": {"ok": false, "error": "nope"}})),
            None,
        );
        check(
            ok_output(json!({"type": "result", "value": {"ok": false, "error": "nope", "code": "E1"}})),
            None,
        );
        // What the Go version accepted: any object with a boolean `ok`.
        check(
            ok_output(json!({"type": "result", "value": {"ok": false, "error": "x", "code": 7}})),
            None,
        );
        check(ok_output(json!({"type": "result", "value": {"ok": false}})), None);
        check(
            ok_output(json!({"type": "result", "value": {"ok": false, "error": {"m": 1}}})),
            None,
        );
        check(
            ok_output(json!({"type": "result", "value": {"ok": null}})),
            Some(ErrorCode::BadReturn),
        );
        check(
            ok_output(json!({"type": "result", "value": [{"ok": true}]})),
            Some(ErrorCode::BadReturn),
        );
        check(
            ok_output(json!({"type": "result", "value": {"ok": "yes"}})),
            Some(ErrorCode::BadReturn),
        );
        check(
            ok_output(json!({"type": "result", "value": {"data": 1}})),
            Some(ErrorCode::BadReturn),
        );
        check(
            ok_output(json!({"type": "result", "value": 42})),
            Some(ErrorCode::BadReturn),
        );
        check(ok_output(json!({"type": "result"})), Some(ErrorCode::BadReturn));
        check(ok_output(json!({"nothing": true})), Some(ErrorCode::BadReturn));
        for code in BOOTSTRAP_CODES {
            check(
                ok_output(json!({"type": "error", "code": code.as_str(), "message": "m"})),
                Some(code),
            );
        }
        check(
            ok_output(json!({"type": "error", "code": "TIMEOUT", "message": "forged"})),
            Some(ErrorCode::Internal),
        );
        check(
            Ok(RunOutput {
                output_json: b"{not json".to_vec(),
                ..RunOutput::default()
            }),
            Some(ErrorCode::BadReturn),
        );
        check(
            ok_output(json!({"type": "result", "value": {"ok": true, "data": "x".repeat(2000)}})),
            Some(ErrorCode::OutputTooLarge),
        );
        for code in [
            ErrorCode::Timeout,
            ErrorCode::OutOfMemory,
            ErrorCode::ExitedWithoutOutput,
        ] {
            check(Err(RunFailure::new(code, "m", vec![])), Some(code));
        }
    }

    #[test]
    fn a_go_era_business_failure_is_returned_exactly() {
        let value = json!({"ok": false, "code": 42, "detail": {"a": [1]}});
        let got = classify(&ok_output(json!({"type": "result", "value": value.clone()})), 1024);
        assert_eq!(got, Outcome::Returned(value));
    }

    #[test]
    fn failure_output_describes_the_failure() {
        let deployment = faas_ports::Deployment {
            collection_path: faas_ports::CollectionPath::parse("a").unwrap(),
            name: faas_ports::FunctionName::parse("f").unwrap(),
            language: faas_ports::Language::Javascript,
            source_code: String::new(),
            env: faas_ports::EnvMap::new(),
            version: faas_ports::Version::new(3).unwrap(),
            created_at: chrono::Utc::now(),
        };
        let run_id = RunId::generate();
        let r = build(
            &run_id,
            &deployment,
            Outcome::Failed {
                code: ErrorCode::Timeout,
                message: "function timed out after 5 ms".into(),
            },
            7,
            StartKind::Prewarm,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error_code"], "TIMEOUT");
        assert_eq!(v["http_status_code"], 0);
        assert!(v.get("http_headers").is_none());
        assert_eq!(
            v["output"],
            json!({"ok": false, "error": "function timed out after 5 ms", "code": "TIMEOUT"})
        );
        assert_eq!(v["deployment_id"], "a/f@v3");
        assert_eq!(v["collection_path"], "a");
        assert_eq!(v["execution_id"], v["run_id"]);
        assert_eq!(v["start_kind"], "prewarm");

        let ok = build(
            &run_id,
            &deployment,
            Outcome::Returned(json!({"ok": true})),
            1,
            StartKind::Warm,
        );
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["status"], "success");
        assert!(v.get("error_code").is_none());
        assert_eq!(v["http_status_code"], 200);
        assert_eq!(v["http_headers"], json!({"Content-Type": "application/json"}));
        assert_eq!(v["error_message"], "");
        assert_eq!(v["start_kind"], "warm");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                ".{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    proptest::collection::btree_map("ok|error|code|type|value|[a-z]{1,3}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn judge(raw: Vec<u8>, max: u64) -> Outcome {
            classify(
                &Ok(RunOutput {
                    output_json: raw,
                    ..RunOutput::default()
                }),
                max,
            )
        }

        proptest! {
            #[test]
            fn a_returned_value_keeps_the_contract_and_the_limit(value in json_value(), max in 0u64..200) {
                let raw = serde_json::to_vec(&json!({"type": "result", "value": value})).unwrap();
                match judge(raw, max) {
                    Outcome::Returned(v) => {
                        prop_assert_eq!(&v, &value);
                        prop_assert!(validate_return(&v).is_ok());
                        prop_assert!(serde_json::to_vec(&v).unwrap().len() as u64 <= max);
                    }
                    Outcome::Failed { code, .. } => {
                        prop_assert!(matches!(code, ErrorCode::BadReturn | ErrorCode::OutputTooLarge), "{:?}", code);
                    }
                }
            }

            #[test]
            fn any_bytes_are_judged_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..300), max in 0u64..400) {
                if let Outcome::Failed { code, message } = judge(raw, max) {
                    prop_assert!(!message.is_empty());
                    prop_assert!(code != ErrorCode::Timeout && code != ErrorCode::OutOfMemory);
                }
            }

            #[test]
            fn bootstrap_errors_keep_only_their_own_codes(code in "[A-Z_]{0,20}", message in ".{0,20}") {
                let raw = serde_json::to_vec(&json!({"type": "error", "code": code, "message": message})).unwrap();
                let Outcome::Failed { code: got, .. } = judge(raw, 1024) else {
                    return Err(TestCaseError::fail("an error envelope never succeeds"));
                };
                let want = ErrorCode::parse(&code)
                    .filter(|c| BOOTSTRAP_CODES.contains(c))
                    .unwrap_or(ErrorCode::Internal);
                prop_assert_eq!(got, want);
            }
        }
    }
}
