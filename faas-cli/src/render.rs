//! Human-readable output: aligned tables, run results and log lines. Every
//! function returns text; the caller decides where it goes.

use serde_json::Value;

/// Columns padded to their widest cell (in characters), separated by two
/// spaces, with a header row. Trailing spaces are trimmed.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            line.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A field of a JSON object as text: strings as they are, numbers and
/// booleans written out, absent or null as `-`.
pub fn cell(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn rows(list: &Value, keys: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| keys.iter().map(|k| cell(item, k)).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// `GET …/functions`: NAME, VERSION, CREATED.
pub fn functions_table(list: &Value) -> String {
    table(
        &["NAME", "VERSION", "CREATED"],
        &rows(list, &["name", "version", "created_at"]),
    )
}

/// `GET …/versions`: VERSION, CREATED.
pub fn versions_table(list: &Value) -> String {
    table(&["VERSION", "CREATED"], &rows(list, &["version", "created_at"]))
}

/// `GET /collections`: PATH, CREATED.
pub fn collections_table(list: &Value) -> String {
    table(&["PATH", "CREATED"], &rows(list, &["path", "created_at"]))
}

/// `GET /function-logs`: TIME, LEVEL, FUNCTION, RUN, MESSAGE.
pub fn log_entries_table(list: &Value) -> String {
    table(
        &["TIME", "LEVEL", "FUNCTION", "RUN", "MESSAGE"],
        &rows(list, &["ts", "level", "function_name", "run_id", "message"]),
    )
}

/// One captured log line of a run, `time level message`, from a RunResult
/// `logs` entry (`{stream, level, time, message}`: an invoke's and a local
/// run's alike).
pub fn run_log_line(entry: &Value) -> String {
    let field = |k: &str| entry.get(k).and_then(Value::as_str);
    let time = field("time").unwrap_or("-");
    let level = field("level").unwrap_or("log");
    let message = field("message").unwrap_or("");
    format!("{time} {level:<5} {message}")
}

/// JSON pretty-printed, with a final newline.
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns() {
        let list = json!([
            {"name":"hello","version":2,"created_at":"2026-01-02T03:04:05.678Z"},
            {"name":"a-much-longer-name","version":10,"created_at":"2026-01-03T00:00:00.000Z"}
        ]);
        let expected = "\
NAME                VERSION  CREATED
hello               2        2026-01-02T03:04:05.678Z
a-much-longer-name  10       2026-01-03T00:00:00.000Z
";
        assert_eq!(functions_table(&list), expected);
    }

    #[test]
    fn empty_list_is_only_the_header() {
        assert_eq!(collections_table(&json!([])), "PATH  CREATED\n");
    }

    #[test]
    fn missing_fields_are_dashes() {
        let list = json!([{"ts":"t","level":"log","message":"hi","run_id":"run-1"}]);
        assert_eq!(
            log_entries_table(&list),
            "TIME  LEVEL  FUNCTION  RUN    MESSAGE\nt     log    -         run-1  hi\n"
        );
    }

    #[test]
    fn run_log_lines() {
        let entry = json!({"stream":"stdout","level":"info","time":"T1","message":"hello"});
        assert_eq!(run_log_line(&entry), "T1 info  hello");
        let error = json!({"stream":"stderr","level":"error","time":"T2","message":"boom"});
        assert_eq!(run_log_line(&error), "T2 error boom");
        assert_eq!(run_log_line(&json!({})), "- log   ");
    }
}
