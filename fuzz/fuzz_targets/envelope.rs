//! The result envelope and the captured log lines a runtime hands back
//! (faas-domain `run_result::classify`, `run_logs`): no panic; a returned
//! value always satisfies the handler contract and the output limit; the
//! logs an invoke returns stay within their caps.
#![no_main]
use faas_domain::run_result::{classify, validate_return, Outcome};
use faas_domain::{RUN_LOGS_MAX_ENTRIES, RUN_LOGS_MAX_MESSAGE_BYTES};
use faas_ports::{ErrorCode, RunOutput, StartKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, raw)) = data.split_first() else {
        return;
    };
    let max_output_bytes = u64::from(limit) * 8;
    let output = RunOutput {
        output_json: raw.to_vec(),
        logs: raw.to_vec(),
        start_kind: StartKind::Warm,
    };
    match classify(&Ok(output.clone()), max_output_bytes) {
        Outcome::Returned(value) => {
            assert_eq!(validate_return(&value), Ok(()));
            let size = serde_json::to_vec(&value).expect("a value serialises").len() as u64;
            assert!(size <= max_output_bytes, "{size} > {max_output_bytes}");
        }
        Outcome::Failed { code, message } => {
            assert!(!message.is_empty());
            assert!(
                matches!(
                    code,
                    ErrorCode::BadReturn
                        | ErrorCode::OutputTooLarge
                        | ErrorCode::HandlerThrow
                        | ErrorCode::NoHandler
                        | ErrorCode::BadInput
                        | ErrorCode::SyntaxError
                        | ErrorCode::Internal
                ),
                "{code:?}"
            );
        }
    }
    let (logs, truncated) = faas_domain::run_logs(&output.logs);
    assert!(logs.len() <= RUN_LOGS_MAX_ENTRIES);
    let bytes: usize = logs.iter().map(|l| l.message.len()).sum();
    assert!(bytes <= RUN_LOGS_MAX_MESSAGE_BYTES);
    // The messages returned are whole lines' messages, cut only when truncated.
    assert!(truncated || bytes <= raw.len());
});
