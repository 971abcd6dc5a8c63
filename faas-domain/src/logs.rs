//! Turns the bootstrap's captured log lines into [`LogEntry`]s with their run
//! context (for the sink), or into the capped [`RunLog`]s an invoke returns
//! when it asks for `include_logs`.

use faas_ports::{Deployment, LogEntry, LogLevel, LogStream, RunId, RunLog, StartKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct CapturedLine {
    ts: String,
    level: LogLevel,
    message: String,
}

/// Parses NDJSON lines `{"ts","level","message"}`; lines that do not parse
/// (a line cut by the size cap, say) are skipped.
pub fn parse_captured(raw: &[u8], run_id: &RunId, deployment: &Deployment, start_kind: StartKind) -> Vec<LogEntry> {
    let deployment_id = deployment.deployment_id();
    raw.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice::<CapturedLine>(line).ok())
        .map(|line| LogEntry {
            run_id: run_id.to_string(),
            execution_id: run_id.to_string(),
            function_name: deployment.name.to_string(),
            collection_path: deployment.collection_path.as_str().to_owned(),
            deployment_version: deployment.version.get(),
            deployment_id: deployment_id.clone(),
            ts: line.ts,
            level: line.level,
            message: line.message,
            start_kind,
        })
        .collect()
}

/// Most entries an invoke returns in `logs`; the rest are dropped and
/// `logs_truncated` is `true`.
pub const RUN_LOGS_MAX_ENTRIES: usize = 1000;

/// Most bytes of messages an invoke returns in `logs` (256 KiB); the message
/// that passes it is cut at a character boundary, the rest are dropped.
pub const RUN_LOGS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The start of the entry the bootstrap writes when it hit the runtime's own
/// log cap (`LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES`).
const RUNTIME_TRUNCATION_NOTE: &str = "[lowcode-faas] function log truncated";

/// The run's logs as an invoke returns them: in order, at most
/// [`RUN_LOGS_MAX_ENTRIES`] entries and [`RUN_LOGS_MAX_MESSAGE_BYTES`] of
/// messages, and whether anything was cut (here or by the runtime's cap).
pub fn run_logs(raw: &[u8]) -> (Vec<RunLog>, bool) {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = false;
    let lines = raw
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice::<CapturedLine>(line).ok());
    for line in lines {
        if line.level == LogLevel::Warn && line.message.starts_with(RUNTIME_TRUNCATION_NOTE) {
            truncated = true;
        }
        if out.len() >= RUN_LOGS_MAX_ENTRIES || bytes >= RUN_LOGS_MAX_MESSAGE_BYTES {
            truncated = true;
            break;
        }
        let mut message = line.message;
        let room = RUN_LOGS_MAX_MESSAGE_BYTES - bytes;
        if message.len() > room {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            truncated = true;
        }
        bytes += message.len();
        out.push(RunLog {
            stream: LogStream::of(line.level),
            level: line.level,
            time: line.ts,
            message,
        });
    }
    (out, truncated)
}

#[cfg(test)]
mod tests {
    use faas_ports::{CollectionPath, EnvMap, FunctionName, Language, Version};

    use super::*;

    #[test]
    fn parses_lines_and_skips_broken_ones() {
        let deployment = Deployment {
            collection_path: CollectionPath::parse("team").unwrap(),
            name: FunctionName::parse("f").unwrap(),
            language: Language::Javascript,
            source_code: String::new(),
            env: EnvMap::new(),
            version: Version::new(2).unwrap(),
            created_at: chrono::Utc::now(),
        };
        let run_id = RunId::generate();
        let raw = b"{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"log\",\"message\":\"a 7\"}\n{broken\n{\"ts\":\"t\",\"level\":\"warn\",\"message\":\"w\"}\n{\"ts\":\"t\",\"level\":\"wat\",\"message\":\"x\"}";
        let entries = parse_captured(raw, &run_id, &deployment, StartKind::Warm);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].message, "a 7");
        assert_eq!(entries[0].deployment_id, "team/f@v2");
        assert_eq!(entries[0].collection_path, "team");
        assert_eq!(entries[1].level, LogLevel::Warn);
        assert_eq!(entries[1].start_kind, StartKind::Warm);
    }

    fn line(level: &str, message: &str) -> String {
        serde_json::json!({"ts": "2026-01-01T00:00:00.000Z", "level": level, "message": message}).to_string() + "\n"
    }

    #[test]
    fn run_logs_map_levels_to_streams_in_order() {
        let raw: String = ["log", "info", "debug", "warn", "error"]
            .iter()
            .map(|l| line(l, l))
            .collect::<String>()
            + "{broken\n";
        let (logs, truncated) = run_logs(raw.as_bytes());
        assert!(!truncated);
        let got: Vec<(LogStream, &str)> = logs.iter().map(|l| (l.stream, l.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (LogStream::Stdout, "log"),
                (LogStream::Stdout, "info"),
                (LogStream::Stdout, "debug"),
                (LogStream::Stderr, "warn"),
                (LogStream::Stderr, "error"),
            ]
        );
        assert_eq!(logs[0].time, "2026-01-01T00:00:00.000Z");
        assert_eq!(run_logs(b""), (vec![], false));
    }

    #[test]
    fn run_logs_are_capped_in_count_and_bytes() {
        let raw: String = (0..RUN_LOGS_MAX_ENTRIES + 5)
            .map(|i| line("log", &i.to_string()))
            .collect();
        let (logs, truncated) = run_logs(raw.as_bytes());
        assert_eq!(logs.len(), RUN_LOGS_MAX_ENTRIES);
        assert!(truncated);

        let raw: String = line("log", &"é".repeat(100_000)) + &line("log", &"x".repeat(100_000)) + &line("log", "gone");
        let (logs, truncated) = run_logs(raw.as_bytes());
        assert!(truncated);
        assert_eq!(logs.len(), 2);
        let total: usize = logs.iter().map(|l| l.message.len()).sum();
        assert!(total <= RUN_LOGS_MAX_MESSAGE_BYTES, "{total}");
        assert_eq!(logs[0].message.len(), 200_000);

        let raw = line("log", "a")
            + &line(
                "warn",
                "[lowcode-faas] function log truncated: limit of 10 bytes reached",
            );
        let (logs, truncated) = run_logs(raw.as_bytes());
        assert!(truncated, "the runtime's own cap counts as truncation");
        assert_eq!(logs.len(), 2);
    }
}
