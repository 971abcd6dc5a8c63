//! Values given on the command line: `K=V` env pairs, `--input` (inline
//! JSON, `@file` or `-` for stdin), function names and collection paths.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::CliError;

/// One `--env K=V` pair, checked against the API's key rules (§2.5 of
/// docs/api.md): `^[A-Za-z_][A-Za-z0-9_]*$`, not `PORT`, not starting with
/// `LOWCODE_FAAS_`. The value is everything after the first `=` (it may be
/// empty or contain `=`).
pub fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got `{s}`"));
    };
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid env key `{key}`: letters, digits and _ only, not starting with a digit"
        ));
    }
    if key == "PORT" || key.starts_with("LOWCODE_FAAS_") {
        return Err(format!(
            "env key `{key}` is reserved by the platform (PORT, LOWCODE_FAAS_*)"
        ));
    }
    if value.contains(['\0', '\r', '\n']) {
        return Err(format!("the value of `{key}` contains NUL, CR or LF"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The env pairs as a JSON object; a repeated key keeps its last value.
pub fn env_map(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    map
}

/// Reads `--input`: inline JSON, `@path` (a file), or `-` (standard input).
/// The result must be a JSON object (the handler's `input`).
pub fn read_input(spec: &str, stdin: &mut dyn Read) -> Result<Value, CliError> {
    let (text, from) = if spec == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| CliError::Usage(format!("cannot read the input from stdin: {e}")))?;
        (s, "stdin".to_owned())
    } else if let Some(path) = spec.strip_prefix('@') {
        let s = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read the input file {path}: {e}")))?;
        (s, path.to_owned())
    } else {
        (spec.to_owned(), "--input".to_owned())
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the input ({from}) is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(CliError::Usage(format!(
            "the input ({from}) must be a JSON object, like {{\"name\":\"Ada\"}}"
        )));
    }
    Ok(value)
}

/// A function name as the API accepts it: `^[A-Za-z][A-Za-z0-9_-]{0,63}$`.
pub fn check_name(name: &str) -> Result<&str, CliError> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(CliError::Usage(format!(
            "invalid function name `{name}`: 1 to 64 letters, digits, _ or -, starting with a letter"
        )))
    }
}

/// A collection path trimmed of whitespace and surrounding `/`; `""` is the
/// root. Only characters that never need escaping in a URL path are let
/// through (the server checks the rest).
pub fn collection_path(raw: Option<&str>) -> Result<String, CliError> {
    let p = raw.unwrap_or("").trim().trim_matches('/');
    if p.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
    {
        Ok(p.to_owned())
    } else {
        Err(CliError::Usage(format!(
            "invalid collection path `{p}`: segments of letters, digits, _ or -, separated by /"
        )))
    }
}

/// The default function name for a source file: its stem (`hello.mjs` →
/// `hello`).
pub fn name_from_file(file: &Path) -> Result<String, CliError> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| CliError::Usage(format!("cannot take a name from {}", file.display())))?;
    check_name(stem).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_pairs() {
        let ok = [
            ("A=1", ("A", "1")),
            ("_x=", ("_x", "")),
            ("URL=a=b", ("URL", "a=b")),
            ("GREETING=hi there", ("GREETING", "hi there")),
        ];
        for (input, (k, v)) in ok {
            assert_eq!(parse_env_pair(input), Ok((k.into(), v.into())), "{input}");
        }
        for bad in ["A", "=1", "1A=x", "A-B=1", "PORT=1", "LOWCODE_FAAS_RUN_ID=x", "A=x\ny"] {
            assert!(parse_env_pair(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_env_key_keeps_the_last_value() {
        let pairs = vec![
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "3".to_owned()),
        ];
        assert_eq!(Value::Object(env_map(&pairs)), json!({"A":"3","B":"2"}));
    }

    #[test]
    fn input_inline_file_and_stdin() {
        let mut no_stdin: &[u8] = b"";
        assert_eq!(
            read_input(r#"{"name":"Ada"}"#, &mut no_stdin).ok(),
            Some(json!({"name":"Ada"}))
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.json");
        std::fs::write(&file, r#"{"n":1}"#).unwrap();
        let spec = format!("@{}", file.display());
        assert_eq!(read_input(&spec, &mut no_stdin).ok(), Some(json!({"n":1})));

        let mut stdin: &[u8] = br#"{"from":"stdin"}"#;
        assert_eq!(read_input("-", &mut stdin).ok(), Some(json!({"from":"stdin"})));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let mut no_stdin: &[u8] = b"";
        for bad in ["{", "[1]", "3", "@/nonexistent/input.json"] {
            let err = read_input(bad, &mut no_stdin).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }

    #[test]
    fn names_and_paths() {
        assert!(check_name("hello_2-x").is_ok());
        for bad in ["", "2x", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(collection_path(None).unwrap(), "");
        assert_eq!(collection_path(Some(" /team/api/ ")).unwrap(), "team/api");
        assert!(collection_path(Some("a?b")).is_err());
        assert_eq!(name_from_file(Path::new("dir/hello.mjs")).unwrap(), "hello");
    }
}
