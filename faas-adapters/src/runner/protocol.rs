//! The stdio protocol between a runtime and `bootstrap.mjs --serve`.
//!
//! The runtime first writes the runner's key on its stdin
//! (`{"key":"<64 hex digits>"}`: 32 random bytes, [`RunnerKey`]), before
//! any user code exists in the runner; the runner then says it is ready.
//! After that it writes one job per line (JSON: challenge, source, input,
//! env, limits). The bootstrap answers on stdout with frames, one line each
//! (one `writeSync` each): `\x1eLCF:<nonce>:<kind>:<len>:<mac>:<payload>`,
//! where the job's nonce is `hex(HMAC-SHA256(key, challenge))`
//! ([`RunnerKey::nonce`]), `len` the payload's length in bytes and `mac`
//! `hex(HMAC-SHA256(key, challenge ":" kind ":" payload))` ([`FrameAuth`]).
//! Every frame starts on a fresh line (the bootstrap writes a newline before
//! it), so a user's unterminated write cannot swallow one; a line that does
//! not start with the prefix is stray output and is dropped however long it
//! is; a frame whose nonce is not the current job's (a forged one, or a
//! stale one) is ignored; a frame of the job's nonce whose length or MAC
//! does not match its payload (torn, or with another writer's bytes spliced
//! in) is a [`BadFrame`]: the run fails and the runner is destroyed.
//!
//! The challenge is random per job; the nonce and the key never travel. So
//! code of an earlier run in a warm runner that reads later job lines (from
//! fd 0, past the bootstrap's hiding of the channel) learns their challenges
//! and inputs, but not what it would need to forge their frames: only code
//! that reaches the runner's internals or memory can (README.md, warm mode).

use std::borrow::Cow;
use std::collections::BTreeMap;

use faas_ports::{RunId, RunJob};
use serde::Serialize;

/// What every frame line starts with.
pub(crate) const FRAME_PREFIX: &[u8] = b"\x1eLCF:";
/// The nonce of the ready frame, sent once the runner read its key.
pub(crate) const READY_NONCE: &str = "-";
/// Room for a frame's prefix, nonce, kind and JSON escaping over the
/// payload limits a job sets.
pub(crate) const FRAME_SLACK: u64 = 64 * 1024;

/// One frame of the current job (or the ready frame).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// The runner is up and waits for a job.
    Ready,
    /// The runner took the job: its code may run from now on.
    Started,
    /// One captured log entry (`{"ts","level","message"}`).
    Log(&'a [u8]),
    /// The verdict: the result envelope; `reusable` is false for a runner
    /// whose state can no longer be trusted.
    Result {
        /// `{"type":"result",…}` or `{"type":"error",…}`.
        envelope: &'a [u8],
        /// The runner may take another job.
        reusable: bool,
    },
    /// The envelope was larger than the job's output limit: its size.
    TooLarge(u64),
}

/// A frame line that carries the current nonce but makes no sense.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadFrame(pub(crate) String);

/// A fresh job challenge (random per job; ASCII letters and digits, as the
/// bootstrap requires, at most 256 of them).
pub(crate) fn new_challenge() -> String {
    // A UUIDv7 carries 74 random bits from the OS generator.
    format!("{}{}", RunId::generate().as_str(), RunId::generate().as_str())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// Bytes of a runner's key.
const KEY_BYTES: usize = 32;

/// A runner's secret: the HMAC key of its job nonces, sent once as its
/// first stdin line and never again.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RunnerKey([u8; KEY_BYTES]);

impl std::fmt::Debug for RunnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunnerKey(…)")
    }
}

impl RunnerKey {
    /// A key from the OS random generator.
    pub(crate) fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(format!("no random bytes: {e}")))?;
        Ok(Self(bytes))
    }

    /// The key line: `{"key":"<64 lowercase hex digits>"}` and `\n`.
    pub(crate) fn line(&self) -> Vec<u8> {
        format!("{{\"key\":\"{}\"}}\n", hex(&self.0)).into_bytes()
    }

    /// The nonce of the frames of the job with this challenge.
    pub(crate) fn nonce(&self, challenge: &str) -> String {
        hex(&hmac_sha256(&self.0, challenge.as_bytes()))
    }
}

#[cfg(test)]
impl RunnerKey {
    /// The key of a key line (what a runner reads first), if it is one.
    pub(crate) fn from_line(line: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(line).ok()?;
        let hex = value.get("key")?.as_str()?;
        if hex.len() != 2 * KEY_BYTES {
            return None;
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

/// HMAC-SHA256 (RFC 2104) with a key of at most one block.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    hmac_sha256_parts(key, &[message])
}

/// HMAC-SHA256 of the concatenation of `parts` (the `hmac` crate), with a
/// key of at most one block (a runner key is 32 bytes): zero-padded to the
/// block, as RFC 2104 pads a short key, so building the MAC cannot fail.
fn hmac_sha256_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut block = [0u8; 64];
    let len = key.len().min(block.len());
    block[..len].copy_from_slice(&key[..len]);
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// What authenticates the frames of one job (or the ready frame): the
/// nonce that routes them and the key and challenge of their MACs.
///
/// A frame is `\x1eLCF:<nonce>:<kind>:<len>:<mac>:<payload>`, where `len`
/// is the payload's length in bytes (decimal) and `mac` is
/// `hex(HMAC-SHA256(key, challenge ":" kind ":" payload))` (the challenge of
/// the ready frame is `-`). Challenges are letters and digits and kinds have
/// no `:`, so the MAC input is unambiguous; the MAC binds the payload to the
/// head, so a frame whose payload was cut, spliced or replaced (another
/// writer on fd 1 between or inside its writes) is refused.
#[derive(Debug, Clone)]
pub(crate) struct FrameAuth {
    key: RunnerKey,
    challenge: String,
    nonce: String,
}

impl FrameAuth {
    /// The frames of the job with `challenge`.
    pub(crate) fn job(key: &RunnerKey, challenge: &str) -> Self {
        Self {
            key: key.clone(),
            challenge: challenge.to_owned(),
            nonce: key.nonce(challenge),
        }
    }

    /// The ready frame of a runner with `key`.
    pub(crate) fn ready(key: &RunnerKey) -> Self {
        Self {
            key: key.clone(),
            challenge: READY_NONCE.to_owned(),
            nonce: READY_NONCE.to_owned(),
        }
    }

    /// The nonce that starts these frames (after the prefix).
    pub(crate) fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The MAC of a frame of `kind` with `payload`.
    fn mac(&self, kind: &[u8], payload: &[u8]) -> [u8; 32] {
        hmac_sha256_parts(&self.key.0, &[self.challenge.as_bytes(), b":", kind, b":", payload])
    }

    /// A complete frame line, as the bootstrap writes it (leading and
    /// trailing `\n` included).
    #[cfg(test)]
    pub(crate) fn frame(&self, kind: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "\n\x1eLCF:{}:{kind}:{}:{}:",
            self.nonce,
            payload.len(),
            hex(&self.mac(kind.as_bytes(), payload))
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out.push(b'\n');
        out
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl FrameAuth {
    /// Frames under a given key, challenge and nonce (the fuzz targets pick
    /// the nonce; the MAC still needs the key and challenge).
    pub(crate) fn with_nonce(key: [u8; KEY_BYTES], challenge: &str, nonce: &str) -> Self {
        Self {
            key: RunnerKey(key),
            challenge: challenge.to_owned(),
            nonce: nonce.to_owned(),
        }
    }
}

/// Lowercase hex digits to bytes (`None` for anything else).
fn unhex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(digits[2 * i])? << 4) | nibble(digits[2 * i + 1])?;
    }
    Some(out)
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[derive(Serialize)]
struct JobLine<'a> {
    challenge: &'a str,
    source: &'a str,
    input: Cow<'a, str>,
    env: &'a BTreeMap<String, String>,
    max_output_bytes: u64,
    max_log_bytes: u64,
    /// The run's timeout: a runner still on the job 2 s past it kills
    /// itself, so an orphan (its server gone) never runs on.
    timeout_ms: u64,
}

/// The job as one stdin line (JSON plus `\n`). `env` is the run's complete
/// env (see [`super::run_env`]). The input travels as a string so the
/// bootstrap judges it (`BAD_INPUT`) exactly as in one-shot mode.
pub(crate) fn job_line(job: &RunJob, env: &BTreeMap<String, String>, challenge: &str) -> serde_json::Result<Vec<u8>> {
    let line = JobLine {
        challenge,
        source: &job.source_code,
        input: String::from_utf8_lossy(&job.input_json),
        env,
        max_output_bytes: job.max_output_bytes,
        max_log_bytes: job.max_log_bytes,
        timeout_ms: u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let mut bytes = serde_json::to_vec(&line)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Parses one complete line that starts with [`FRAME_PREFIX`]. `Ok(None)`
/// for a line that is not a frame of `auth`'s nonce (ignored); a frame of
/// the nonce whose length or MAC does not match its payload (torn, spliced
/// or forged) is a [`BadFrame`].
pub(crate) fn parse_frame<'a>(line: &'a [u8], auth: &FrameAuth) -> Result<Option<Frame<'a>>, BadFrame> {
    use subtle::ConstantTimeEq;
    let Some(rest) = line.strip_prefix(FRAME_PREFIX) else {
        return Ok(None);
    };
    let mut parts = rest.splitn(2, |b| *b == b':');
    let (Some(frame_nonce), Some(rest)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    if frame_nonce != auth.nonce.as_bytes() {
        return Ok(None);
    }
    let mut parts = rest.splitn(4, |b| *b == b':');
    let (Some(kind), Some(len), Some(mac), Some(payload)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadFrame("a frame without its length, MAC or payload".to_owned()));
    };
    // Decimal, canonical (no sign, no leading zero).
    let canonical = matches!(len, [b'0'] | [b'1'..=b'9', ..]) && len.len() <= 20 && len.iter().all(u8::is_ascii_digit);
    let len = canonical
        .then(|| std::str::from_utf8(len).ok()?.parse::<usize>().ok())
        .flatten();
    if len != Some(payload.len()) {
        return Err(BadFrame(format!(
            "a frame's payload of {} bytes does not match its length",
            payload.len()
        )));
    }
    let Some(mac) = unhex::<32>(mac) else {
        return Err(BadFrame("a frame without a readable MAC".to_owned()));
    };
    if !bool::from(auth.mac(kind, payload).ct_eq(&mac)) {
        return Err(BadFrame("a frame whose MAC does not match".to_owned()));
    }
    let frame = match kind {
        b"ready" => Frame::Ready,
        b"started" => Frame::Started,
        b"log" => Frame::Log(payload),
        b"result" => Frame::Result {
            envelope: payload,
            reusable: true,
        },
        b"result-final" => Frame::Result {
            envelope: payload,
            reusable: false,
        },
        b"too-large" => {
            #[derive(serde::Deserialize)]
            struct Size {
                size: u64,
            }
            let size: Size =
                serde_json::from_slice(payload).map_err(|e| BadFrame(format!("unreadable too-large frame: {e}")))?;
            Frame::TooLarge(size.size)
        }
        other => {
            return Err(BadFrame(format!(
                "unknown frame kind '{}'",
                String::from_utf8_lossy(&other[..other.len().min(32)])
            )))
        }
    };
    Ok(Some(frame))
}

/// A frame line longer than the job allows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow(pub(crate) usize);

/// Splits stdout bytes into the frame lines of one nonce, bounded: a line
/// that does not start with `\x1eLCF:<nonce>:` (stray output, a forged or
/// stale frame) is dropped as it streams, never buffered whole; a frame line
/// of the nonce over `cap` bytes is an [`Overflow`].
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    cap: usize,
    discarding: bool,
    prefix: Vec<u8>,
}

impl LineSplitter {
    /// A splitter for the frames of `nonce`, at most `cap` bytes a line.
    pub(crate) fn new(cap: u64, nonce: &str) -> Self {
        let mut prefix = FRAME_PREFIX.to_vec();
        prefix.extend_from_slice(nonce.as_bytes());
        prefix.push(b':');
        Self {
            buf: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            discarding: false,
            prefix,
        }
    }

    /// Feeds a chunk; returns the frame lines it completed (without `\n`).
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<Vec<u8>>, Overflow> {
        let mut lines = Vec::new();
        while let Some(nl) = chunk.iter().position(|b| *b == b'\n') {
            let segment = &chunk[..nl];
            if !self.discarding && may_be_frame(&self.prefix, &self.buf, segment) {
                let len = self.buf.len().saturating_add(segment.len());
                if len > self.cap {
                    return Err(Overflow(len));
                }
                self.buf.extend_from_slice(segment);
                if self.buf.len() >= self.prefix.len() {
                    lines.push(std::mem::take(&mut self.buf));
                }
            }
            self.buf.clear();
            self.discarding = false;
            chunk = &chunk[nl + 1..];
        }
        if !self.discarding {
            if !may_be_frame(&self.prefix, &self.buf, chunk) {
                self.buf.clear();
                self.discarding = true;
            } else {
                let len = self.buf.len().saturating_add(chunk.len());
                if len > self.cap {
                    return Err(Overflow(len));
                }
                self.buf.extend_from_slice(chunk);
            }
        }
        Ok(lines)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl LineSplitter {
    /// Bytes held for an unfinished frame line (at most the cap).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Whether `head` followed by `more` still starts like `prefix` (compares
/// only the first bytes, up to the prefix's length).
fn may_be_frame(prefix: &[u8], head: &[u8], more: &[u8]) -> bool {
    head.iter().chain(more.iter()).zip(prefix.iter()).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(nonce: &str, kind: &str, payload: &str) -> Vec<u8> {
        auth(nonce).frame(kind, payload.as_bytes())
    }

    /// Frames under a fixed key and challenge `c`, routed by `nonce`.
    fn auth(nonce: &str) -> FrameAuth {
        FrameAuth::with_nonce([9; KEY_BYTES], "c", nonce)
    }

    /// A frame line as the splitter hands it over (no newlines).
    fn line(auth: &FrameAuth, kind: &str, payload: &[u8]) -> Vec<u8> {
        let frame = auth.frame(kind, payload);
        frame[1..frame.len() - 1].to_vec()
    }

    #[test]
    fn frames_of_the_nonce_parse_and_others_are_ignored() {
        let a = auth("abc");
        let key = RunnerKey([9; KEY_BYTES]);
        let ready = FrameAuth::ready(&key);
        assert_eq!(
            parse_frame(&line(&ready, "ready", b"{}"), &ready),
            Ok(Some(Frame::Ready))
        );
        let job = FrameAuth::job(&key, "c");
        assert_eq!(job.nonce(), key.nonce("c"));
        assert_eq!(
            parse_frame(&line(&job, "started", b"{}"), &job),
            Ok(Some(Frame::Started))
        );
        assert_eq!(parse_frame(&line(&a, "started", b"{}"), &a), Ok(Some(Frame::Started)));
        let log = line(&a, "log", b"{\"m\":1}");
        assert_eq!(parse_frame(&log, &a), Ok(Some(Frame::Log(b"{\"m\":1}"))));
        let result = line(&a, "result", b"{\"a\":\"x:y\"}");
        assert_eq!(
            parse_frame(&result, &a),
            Ok(Some(Frame::Result {
                envelope: b"{\"a\":\"x:y\"}",
                reusable: true
            }))
        );
        let last = line(&a, "result-final", b"{}");
        assert_eq!(
            parse_frame(&last, &a),
            Ok(Some(Frame::Result {
                envelope: b"{}",
                reusable: false
            }))
        );
        let big = line(&a, "too-large", b"{\"size\":7}");
        assert_eq!(parse_frame(&big, &a), Ok(Some(Frame::TooLarge(7))));
        // Another nonce's frame, or no frame at all: ignored.
        assert_eq!(parse_frame(&line(&auth("other"), "result", b"{}"), &a), Ok(None));
        assert_eq!(parse_frame(b"\x1eLCF:abc", &a), Ok(None));
        assert_eq!(parse_frame(b"plain text", &a), Ok(None));
        assert!(parse_frame(&line(&a, "explode", b"{}"), &a).is_err());
        assert!(parse_frame(&line(&a, "too-large", b"{}"), &a).is_err());
    }

    #[test]
    fn torn_spliced_or_forged_frames_of_the_nonce_are_bad() {
        let a = auth("n");
        let good = line(&a, "result", b"{\"type\":\"result\",\"value\":1}");
        assert!(parse_frame(&good, &a).unwrap().is_some());
        // The old format (no length, no MAC) and a head without a payload.
        assert!(parse_frame(b"\x1eLCF:n:result:{\"type\":\"result\"}", &a).is_err());
        assert!(parse_frame(b"\x1eLCF:n:result:", &a).is_err());
        // Torn: the payload cut short, or a head whose payload never came.
        assert!(parse_frame(&good[..good.len() - 1], &a).is_err());
        let head_end = good.len() - b"{\"type\":\"result\",\"value\":1}".len();
        assert!(parse_frame(&good[..head_end], &a).is_err());
        // Spliced: another writer's bytes between the head and the payload,
        // with or without a length that fits them.
        let forged = b"{\"type\":\"result\",\"value\":666}";
        let mut spliced = good[..head_end].to_vec();
        spliced.extend_from_slice(forged);
        assert_eq!(
            parse_frame(&spliced, &a),
            Err(BadFrame(format!(
                "a frame's payload of {} bytes does not match its length",
                forged.len()
            )))
        );
        let mac = &good[head_end - 65..head_end - 1];
        let relabelled = [
            format!("\x1eLCF:n:result:{}:", forged.len()).as_bytes(),
            mac,
            b":",
            forged,
        ]
        .concat();
        assert_eq!(
            parse_frame(&relabelled, &a),
            Err(BadFrame("a frame whose MAC does not match".to_owned()))
        );
        // Wrong length, malformed length, malformed or wrong MAC.
        let text = String::from_utf8(good.clone()).unwrap();
        let len = "27:";
        assert!(text.contains(len));
        for bad in [
            text.replacen(len, "26:", 1),
            text.replacen(len, "027:", 1),
            text.replacen(len, "+27:", 1),
            text.replacen(len, ":", 1),
            text.replacen(len, "99999999999999999999999:", 1),
        ] {
            assert!(parse_frame(bad.as_bytes(), &a).is_err(), "{bad}");
        }
        let mut flipped = good.clone();
        flipped[head_end - 2] = if flipped[head_end - 2] == b'0' { b'1' } else { b'0' };
        assert!(parse_frame(&flipped, &a).is_err());
        let mut upper = good.clone();
        upper[head_end - 65..head_end - 1].make_ascii_uppercase();
        if upper != good {
            assert!(parse_frame(&upper, &a).is_err());
        }
        // A valid frame of one kind, challenge or key is no frame of another.
        let relabelled_kind = text.replacen(":result:", ":result-final:", 1);
        assert!(parse_frame(relabelled_kind.as_bytes(), &a).is_err());
        let other_challenge = FrameAuth::with_nonce([9; KEY_BYTES], "d", "n");
        assert!(parse_frame(&good, &other_challenge).is_err());
        let other_key = FrameAuth::with_nonce([8; KEY_BYTES], "c", "n");
        assert!(parse_frame(&good, &other_key).is_err());
    }

    #[test]
    fn frame_macs_are_the_hmac_of_challenge_kind_and_payload() {
        let a = auth("n");
        let want = hmac_sha256(&[9; KEY_BYTES], b"c:log:a:b\n");
        assert_eq!(a.mac(b"log", b"a:b\n"), want);
        let frame = a.frame("log", b"a:b");
        assert_eq!(
            frame,
            format!(
                "\n\x1eLCF:n:log:3:{}:a:b\n",
                hex(&hmac_sha256(&[9; KEY_BYTES], b"c:log:a:b"))
            )
            .into_bytes()
        );
    }

    #[test]
    fn the_splitter_keeps_frames_and_drops_stray_output_in_any_chunking() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"stray line one\n");
        stream.extend_from_slice(b"unterminated stray");
        stream.extend_from_slice(&frame("n", "log", "{\"x\":1}"));
        // Another nonce's frame, however long, is stray output.
        stream.extend_from_slice(&frame("other", "result", &"z".repeat(5000)));
        stream.extend_from_slice(&b"y".repeat(10_000));
        stream.extend_from_slice(&frame("n", "result", "{}"));
        for size in [1, 2, 3, 7, 100, stream.len()] {
            let mut splitter = LineSplitter::new(1000, "n");
            let mut lines = Vec::new();
            for chunk in stream.chunks(size) {
                lines.extend(splitter.feed(chunk).unwrap());
            }
            assert_eq!(
                lines,
                vec![line(&auth("n"), "log", b"{\"x\":1}"), line(&auth("n"), "result", b"{}")],
                "chunk size {size}"
            );
            // Stray output never piles up in the buffer.
            assert!(splitter.buf.len() <= FRAME_PREFIX.len() + 2);
        }
    }

    #[test]
    fn a_frame_line_over_the_cap_overflows() {
        let mut splitter = LineSplitter::new(20, "n");
        let long = frame("n", "result", &"z".repeat(50));
        assert!(splitter.feed(&long[..30]).is_err());
        let mut splitter = LineSplitter::new(20, "n");
        assert!(splitter.feed(&long).is_err());
    }

    #[test]
    fn job_lines_are_one_json_line_with_a_lossy_input() {
        let mut job = crate::runtime_contract::contract_job("export const handler = () => ({ ok: true });");
        job.input_json = b"{\"a\":\"line\nbreak\"}\xff".to_vec();
        let env = BTreeMap::from([("K".to_string(), "v\n2".to_string())]);
        let line = job_line(&job, &env, "challenge1").unwrap();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["challenge"], "challenge1");
        assert!(value.get("nonce").is_none(), "the nonce never travels");
        assert_eq!(value["env"]["K"], "v\n2");
        assert!(value["input"].as_str().unwrap().ends_with('\u{fffd}'));
        assert_eq!(value["max_output_bytes"], job.max_output_bytes);
        assert_eq!(value["timeout_ms"], 60_000);
    }

    #[test]
    fn challenges_are_long_random_and_what_the_bootstrap_accepts() {
        let (a, b) = (new_challenge(), new_challenge());
        assert_ne!(a, b);
        assert!((48..=256).contains(&a.len()), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn nonces_are_the_hmac_of_the_challenge_under_the_runner_key() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let key = RunnerKey::generate().unwrap();
        let other = RunnerKey::generate().unwrap();
        assert_ne!(key, other);
        let nonce = key.nonce("abc");
        assert_eq!(nonce.len(), 64);
        assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(nonce, key.nonce("abc"));
        assert_ne!(nonce, key.nonce("abd"));
        assert_ne!(nonce, other.nonce("abc"));
        let line = key.line();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["key"].as_str().unwrap().len(), 64);
        assert_eq!(hex(&key.0), value["key"]);
        assert!(line.ends_with(b"\"}\n"));
        assert_eq!(RunnerKey::from_line(&line), Some(key.clone()));
        assert_eq!(format!("{key:?}"), "RunnerKey(…)");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// What the splitter must return: the complete lines that start with
        /// the prefix of `nonce`, or `Err` when a line that may still be one
        /// is over `cap`.
        fn model(stream: &[u8], cap: usize, nonce: &str) -> Result<Vec<Vec<u8>>, ()> {
            let prefix = [FRAME_PREFIX, nonce.as_bytes(), b":"].concat();
            let mut out = Vec::new();
            let mut lines = stream.split(|b| *b == b'\n').peekable();
            while let Some(line) = lines.next() {
                let complete = lines.peek().is_some();
                if line.iter().zip(prefix.iter()).all(|(a, b)| a == b) {
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

        fn piece() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                Just(b"\n".to_vec()),
                Just(b"\x1eLCF:n:".to_vec()),
                Just(b"\x1eLCF:".to_vec()),
                Just(b"\x1eLCF:m:result:{}".to_vec()),
                "(log|result|started|too-large|x):[ -~]{0,20}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..30),
            ]
        }

        proptest! {
            #[test]
            fn the_splitter_matches_the_model_in_any_chunking(
                pieces in proptest::collection::vec(piece(), 0..30),
                cap in 8usize..80,
                chunk in 1usize..40,
            ) {
                let stream = pieces.concat();
                let want = model(&stream, cap, "n");
                let mut splitter = LineSplitter::new(cap as u64, "n");
                let mut got = Ok(Vec::new());
                for part in stream.chunks(chunk) {
                    match splitter.feed(part) {
                        Ok(lines) => got.as_mut().unwrap().extend(lines),
                        Err(Overflow(len)) => {
                            prop_assert!(len > cap);
                            got = Err(());
                            break;
                        }
                    }
                    prop_assert!(splitter.buffered() <= cap);
                }
                prop_assert_eq!(&got, &want);
                for line in want.iter().flatten() {
                    // Parsing never panics; another nonce never sees the frame.
                    let _ = parse_frame(line, &FrameAuth::with_nonce([1; KEY_BYTES], "c", "n"));
                    prop_assert_eq!(parse_frame(line, &FrameAuth::with_nonce([1; KEY_BYTES], "c", "m")), Ok(None));
                }
            }

            #[test]
            fn frames_of_the_nonce_parse_to_their_kind(payload in "[ -~]{0,40}", reusable: bool, cut in 0usize..200) {
                let auth = FrameAuth::with_nonce([3; KEY_BYTES], "ch", "abc");
                let kind = if reusable { "result" } else { "result-final" };
                let frame = auth.frame(kind, payload.as_bytes());
                let line = &frame[1..frame.len() - 1];
                prop_assert_eq!(
                    parse_frame(line, &auth),
                    Ok(Some(Frame::Result { envelope: payload.as_bytes(), reusable }))
                );
                // Any strictly shorter prefix that still carries the nonce is refused.
                let head = FRAME_PREFIX.len() + 4;
                if head + cut < line.len() {
                    prop_assert!(parse_frame(&line[..head + cut], &auth).is_err());
                }
                let frame = auth.frame("log", payload.as_bytes());
                prop_assert_eq!(parse_frame(&frame[1..frame.len() - 1], &auth), Ok(Some(Frame::Log(payload.as_bytes()))));
            }
        }
    }
}
