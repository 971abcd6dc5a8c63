//! `faas-server run-handler`: the command-line wrapper over
//! [`faas_handler_kit`] (argument parsing only).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use faas_handler_kit::{run_handler, run_handler_with, HandlerRun};

/// `faas-server run-handler <file.mjs> [--input JSON] [--env KEY=VALUE]... [--timeout-ms N] [--node BIN]`:
/// parses the arguments after `run-handler`.
pub fn parse_args(args: &[String]) -> Result<(PathBuf, HandlerRun), String> {
    let mut path = None;
    let mut run = HandlerRun::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--input" => {
                let raw = value("--input")?;
                run.input = serde_json::from_str(&raw).map_err(|e| format!("--input is not JSON: {e}"))?;
            }
            "--env" => {
                let raw = value("--env")?;
                let (k, v) = raw.split_once('=').ok_or("--env takes KEY=VALUE")?;
                run.env.insert(k.to_owned(), v.to_owned());
            }
            "--timeout-ms" => {
                let raw = value("--timeout-ms")?;
                let ms: u64 = raw.parse().map_err(|_| "--timeout-ms takes a non-negative integer")?;
                run.timeout = Some(Duration::from_millis(ms));
            }
            "--node" => run.node_bin = PathBuf::from(value("--node")?),
            "--name" => run.name = value("--name")?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other if path.is_none() => path = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok((path.ok_or("the handler file is required")?, run))
}

/// Usage text of `run-handler`.
pub const USAGE: &str = "usage: faas-server run-handler <handler.mjs> [--input JSON] [--env KEY=VALUE]... [--timeout-ms N] [--node BIN] [--name NAME]";

/// `faas-server run-handler`: runs one handler file once on the local `node`
/// and prints its RunResult JSON on stdout (exit 0 on success, 1 on a failed
/// run, 2 on bad arguments). Service logs stay off.
pub async fn command(args: &[String]) -> ExitCode {
    let (path, run) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("faas-server run-handler: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faas-server run-handler: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match run_handler_with(&source, run).await {
        Ok(result) => {
            let failed = result.error_code.is_some();
            match serde_json::to_string_pretty(&result) {
                Ok(json) => {
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{json}");
                    }
                }
                Err(e) => {
                    eprintln!("faas-server run-handler: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("faas-server run-handler: {} ({})", e, e.code());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let (path, run) = parse_args(&args(&[
            "h.mjs",
            "--input",
            r#"{"a":1}"#,
            "--env",
            "K=v=w",
            "--timeout-ms",
            "500",
        ]))
        .unwrap();
        assert_eq!(path, PathBuf::from("h.mjs"));
        assert_eq!(run.input, serde_json::json!({"a": 1}));
        assert_eq!(run.env["K"], "v=w");
        assert_eq!(run.timeout, Some(Duration::from_millis(500)));
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--input"])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--input", "{"])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--bogus"])).is_err());
        assert!(parse_args(&args(&["h.mjs", "--timeout-ms", "-1"])).is_err());
    }
}
