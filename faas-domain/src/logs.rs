//! Turns the bootstrap's captured log lines into [`LogEntry`]s with their run context.

use faas_ports::{Deployment, LogEntry, LogLevel, RunId, StartKind};
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
}
