//! The stdio frames a runtime reads back from a runner (faas-adapters
//! `runner::protocol`): the line splitter in any chunking gives exactly the
//! frame lines of a simple model of the protocol and never holds more than
//! its cap; every frame line parses without panic, and the log payloads and
//! result envelopes go through the domain's readers.
#![no_main]
use faas_adapters::fuzzing::{parse_frame, Frame, LineSplitter, FRAME_PREFIX};
use faas_ports::{RunOutput, StartKind};
use libfuzzer_sys::fuzz_target;

const NONCE: &str = "n0nce";

/// What the splitter must return for `stream`: `Err` when a line that may
/// still be a frame of the nonce is over `cap`.
fn model(stream: &[u8], cap: usize) -> Result<Vec<Vec<u8>>, ()> {
    let prefix = [FRAME_PREFIX, NONCE.as_bytes(), b":"].concat();
    let compatible = |line: &[u8]| line.iter().zip(prefix.iter()).all(|(a, b)| a == b);
    let mut out = Vec::new();
    let mut lines = stream.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let complete = lines.peek().is_some();
        if compatible(line) {
            if line.len() > cap {
                return Err(());
            }
            if complete && line.len() >= prefix.len() {
                out.push(line.to_vec());
            }
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let [cap_byte, chunk_byte, stream @ ..] = data else {
        return;
    };
    // At least the prefix's length, as in the product (64 KiB and more).
    let cap = 16 + usize::from(*cap_byte) * 4;
    let want = model(stream, cap);

    // Whole, and in chunks of a size the input picks (1 to 32 bytes).
    let mut whole = LineSplitter::new(cap as u64, NONCE);
    let got_whole = whole.feed(stream).map_err(|_| ());
    assert!(whole.buffered() <= cap);
    let mut chunked = LineSplitter::new(cap as u64, NONCE);
    let mut got_chunked = Ok(Vec::new());
    for chunk in stream.chunks(1 + usize::from(*chunk_byte % 32)) {
        match chunked.feed(chunk) {
            Ok(lines) => {
                if let Ok(all) = &mut got_chunked {
                    all.extend(lines);
                }
            }
            Err(len) => {
                assert!(len > cap);
                got_chunked = Err(());
                break;
            }
        }
        assert!(chunked.buffered() <= cap, "held {} of cap {cap}", chunked.buffered());
    }
    assert_eq!(got_whole, want);
    assert_eq!(got_chunked, want);

    for line in want.iter().flatten() {
        assert!(!line.contains(&b'\n') && line.len() <= cap);
        // A line of another nonce is never a frame of this one.
        assert_eq!(parse_frame(line, "other"), Ok(None));
        match parse_frame(line, NONCE) {
            Ok(Some(Frame::Log(payload))) => {
                let (logs, _) = faas_domain::run_logs(&payload);
                assert!(logs.len() <= 1);
            }
            Ok(Some(Frame::Result { envelope, .. })) => {
                let output = RunOutput {
                    output_json: envelope,
                    logs: Vec::new(),
                    start_kind: StartKind::Cold,
                };
                let _ = faas_domain::run_result::classify(&Ok(output), 1024);
            }
            Ok(_) | Err(_) => {}
        }
    }
});
