//! `faas`: the lowcode-faas command line.
//!
//! It speaks the dispatcher's JSON API (docs/api.md) over HTTP and links
//! neither faas-server nor faas-worker. It does link the server's engine
//! for `faas run`, the one command that needs no server: faas-handler-kit
//! (and through it faas-domain and faas-adapters with the process runtime
//! and an in-memory store, see [`local`]), plus faas-ports for shared types.
//!
//! Invariants:
//! - the exit status says what happened ([`error`]): 0 success, 1 the run
//!   failed, 2 usage (clap's own errors too), 3 the server or the network;
//! - results go to stdout, diagnostics and run logs to stderr; `--json`
//!   prints the API's answer untouched;
//! - the API token never appears in output or in `Debug`.

#![warn(missing_docs)]

pub mod api;
pub mod args;
pub mod cli;
pub mod error;
pub mod local;
pub mod render;

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::api::{collection_env_path, function_path, functions_path, misread_collection_route, Api};
use crate::args::{check_name, collection_path, env_map, name_from_file, read_input};
use crate::cli::{Cli, CollectionsCommand, Command};
use crate::error::{CliError, EXIT_OK};

/// Where a command writes: stdout for results, stderr for diagnostics and
/// run logs, stdin for `--input -`.
pub struct Io<'a> {
    /// Results.
    pub out: &'a mut dyn Write,
    /// Diagnostics and run logs.
    pub err: &'a mut dyn Write,
    /// `--input -`.
    pub stdin: &'a mut dyn Read,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

/// Runs a parsed command line and returns the process exit status. Errors
/// are written to `io.err` as `faas: <message>`.
pub async fn run(cli: Cli, io: &mut Io<'_>) -> u8 {
    match execute(cli, io).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            // A run failure was already reported with its logs and output.
            if !matches!(e, CliError::RunFailed { .. }) {
                let _ = writeln!(io.err, "faas: {e}");
            }
            e.exit_code()
        }
    }
}

/// Prints the answer of a save (deploy, pull): the function's new version,
/// or its raw JSON.
fn print_saved(io: &mut Io<'_>, json_out: bool, verb: &str, answer: Option<Value>) {
    let f = answer.unwrap_or(Value::Null);
    if json_out {
        emit(io.out, &render::pretty(&f));
    } else {
        emit(
            io.out,
            &format!(
                "{verb} {} version {}\n",
                render::cell(&f, "id"),
                render::cell(&f, "version")
            ),
        );
    }
}

fn emit(w: &mut dyn Write, text: &str) {
    // A closed pipe (`faas ls | head`) is not an error worth reporting.
    let _ = w.write_all(text.as_bytes());
}

async fn execute(cli: Cli, io: &mut Io<'_>) -> Result<(), CliError> {
    let json_out = cli.json;
    let api = || Api::new(&cli.url, cli.token.clone());
    let timeout = api::DEFAULT_REQUEST_TIMEOUT;
    match cli.command {
        Command::Deploy {
            file,
            name,
            collection,
            env,
        } => {
            let name = match name {
                Some(n) => check_name(&n)?.to_owned(),
                None => name_from_file(&file)?,
            };
            let cp = collection_path(collection.collection.as_deref())?;
            let source = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let f = deploy(&api()?, &cp, &name, &source, &env.env).await?;
            print_saved(io, json_out, "deployed", f);
        }
        Command::Pull {
            name,
            source_url,
            collection,
        } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let path = function_path(&cp, check_name(&name)?, Some("pull"));
            let body = json!({"source_url": source_url});
            let f = api()?.request(Method::POST, &path, &[], Some(&body), timeout).await?;
            print_saved(io, json_out, "pulled", f);
        }
        Command::Invoke {
            name,
            collection,
            env,
            run,
        } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let path = function_path(&cp, check_name(&name)?, Some("invoke"));
            let mut body = Map::new();
            if let Some(spec) = &run.input {
                body.insert("input".into(), read_input(spec, io.stdin)?);
            }
            if !env.env.is_empty() {
                body.insert("env".into(), Value::Object(env_map(&env.env)));
            }
            if let Some(t) = run.timeout {
                body.insert("timeout_ms".into(), json!(t));
            }
            if let Some(v) = run.version {
                body.insert("version".into(), json!(v));
            }
            if run.logs {
                body.insert("include_logs".into(), json!(true));
            }
            // The server's own maximum is 900 s; wait a little longer than
            // the run may take.
            let wait = Duration::from_millis(run.timeout.unwrap_or(900_000)) + Duration::from_secs(30);
            let result = api()?
                .request(Method::POST, &path, &[], Some(&Value::Object(body)), wait)
                .await?
                .unwrap_or(Value::Null);
            report_run(&result, json_out, run.logs, io)?;
        }
        Command::Run {
            file,
            input,
            env,
            timeout,
            node,
        } => {
            let source = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let input = match &input {
                Some(spec) => read_input(spec, io.stdin)?,
                None => json!({}),
            };
            let name = name_from_file(&file).unwrap_or_else(|_| local::DEFAULT_NAME.to_owned());
            // A repeated key keeps its last value, as for the API calls.
            let env = env.env.into_iter().collect();
            let result = local::run(local::LocalRun {
                source: &source,
                name: &name,
                input,
                env,
                timeout: Duration::from_millis(timeout),
                node: &node,
            })
            .await?;
            report_run(&result, json_out, true, io)?;
        }
        Command::Ls { collection } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let list = api()?
                .request(Method::GET, &functions_path(&cp), &[], None, timeout)
                .await?
                .unwrap_or(Value::Null);
            emit(io.out, &list_text(&list, json_out, render::functions_table));
        }
        Command::Get {
            name,
            collection,
            version,
        } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let path = function_path(&cp, check_name(&name)?, None);
            let query: Vec<(&str, String)> = version.map(|v| ("version", v.to_string())).into_iter().collect();
            let f = api()?
                .request(Method::GET, &path, &query, None, timeout)
                .await?
                .unwrap_or(Value::Null);
            if json_out {
                emit(io.out, &render::pretty(&f));
            } else {
                let src = f.get("source_code").and_then(Value::as_str).unwrap_or("");
                emit(io.out, src);
                if !src.ends_with('\n') {
                    emit(io.out, "\n");
                }
            }
        }
        Command::Versions { name, collection } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let path = function_path(&cp, check_name(&name)?, Some("versions"));
            let list = api()?
                .request(Method::GET, &path, &[], None, timeout)
                .await?
                .unwrap_or(Value::Null);
            emit(io.out, &list_text(&list, json_out, render::versions_table));
        }
        Command::Rm { name, collection } => {
            let cp = collection_path(collection.collection.as_deref())?;
            let path = function_path(&cp, check_name(&name)?, None);
            api()?.request(Method::DELETE, &path, &[], None, timeout).await?;
            if !json_out {
                emit(io.out, &format!("deleted {name}\n"));
            }
        }
        Command::Logs {
            run_id,
            function,
            limit,
        } => {
            let mut query = Vec::new();
            if let Some(r) = run_id {
                query.push(("run_id", r));
            }
            if let Some(f) = function {
                query.push(("function", f));
            }
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            let list = api()?
                .request(Method::GET, "/function-logs", &query, None, timeout)
                .await
                .map_err(logs_disabled_hint)?
                .unwrap_or(Value::Null);
            emit(io.out, &list_text(&list, json_out, render::log_entries_table));
        }
        Command::Collections(sub) => collections(sub, &api()?, json_out, io).await?,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "faas", io.out);
        }
    }
    Ok(())
}

/// Saves `source` as the next version of `collection/name`, creating the
/// function when it does not exist.
///
/// With `--env` pairs the function's env becomes exactly those pairs: one
/// `POST` (the API's create-or-upsert takes everything from its body).
/// Without, the env already stored is kept: a `PUT` with no `env` field
/// writes the next version with the current env (docs/api.md §3.3), and
/// only when that answers `FUNCTION_NOT_FOUND` is the function created with
/// an empty env. (A `POST` without `env` would save an empty env and wipe
/// the stored one; reading it first with `GET` would fail on a server that
/// redacts env values.)
async fn deploy(
    api: &Api,
    collection: &str,
    name: &str,
    source: &str,
    env: &[(String, String)],
) -> Result<Option<Value>, CliError> {
    let timeout = api::DEFAULT_REQUEST_TIMEOUT;
    let create = |env: Map<String, Value>| json!({"name": name, "source_code": source, "env": env});
    if !env.is_empty() {
        let body = create(env_map(env));
        return api
            .request(Method::POST, &functions_path(collection), &[], Some(&body), timeout)
            .await;
    }
    let path = function_path(collection, name, None);
    let update = json!({"source_code": source});
    match api.request(Method::PUT, &path, &[], Some(&update), timeout).await {
        Err(CliError::Api { status: 404, code, .. }) if code == "FUNCTION_NOT_FOUND" => {
            let body = create(Map::new());
            api.request(Method::POST, &functions_path(collection), &[], Some(&body), timeout)
                .await
        }
        other => other,
    }
}

async fn collections(sub: CollectionsCommand, api: &Api, json_out: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    let timeout = api::DEFAULT_REQUEST_TIMEOUT;
    match sub {
        CollectionsCommand::Ls => {
            let list = api
                .request(Method::GET, "/collections", &[], None, timeout)
                .await?
                .unwrap_or(Value::Null);
            emit(io.out, &list_text(&list, json_out, render::collections_table));
        }
        CollectionsCommand::Create { path, env } => {
            let cp = collection_path(Some(&path))?;
            if cp.is_empty() {
                return Err(CliError::Usage(
                    "the root collection always exists; give a path like team/api".into(),
                ));
            }
            let body = json!({"path": cp, "env": env_map(&env.env)});
            let info = api
                .request(Method::POST, "/collections", &[], Some(&body), timeout)
                .await?
                .unwrap_or(Value::Null);
            if json_out {
                emit(io.out, &render::pretty(&info));
            } else {
                emit(io.out, &format!("created {}\n", render::cell(&info, "path")));
            }
        }
        CollectionsCommand::Env { path, env } => {
            let cp = collection_path(Some(&path))?;
            if let Some(why) = misread_collection_route(&cp, true) {
                return Err(CliError::Usage(why));
            }
            let body = json!({"env": env_map(&env.env)});
            let answer = api
                .request(Method::PUT, &collection_env_path(&cp), &[], Some(&body), timeout)
                .await?
                .unwrap_or(Value::Null);
            if json_out {
                emit(io.out, &render::pretty(&answer));
            } else {
                let shown = if cp.is_empty() { "/" } else { &cp };
                emit(io.out, &format!("env of {shown} set ({} variables)\n", env.env.len()));
            }
        }
        CollectionsCommand::Rm { path } => {
            let cp = collection_path(Some(&path))?;
            if cp.is_empty() {
                return Err(CliError::Usage("the root collection cannot be deleted".into()));
            }
            if let Some(why) = misread_collection_route(&cp, false) {
                return Err(CliError::Usage(why));
            }
            api.request(Method::DELETE, &format!("/collections/{cp}"), &[], None, timeout)
                .await?;
            if !json_out {
                emit(io.out, &format!("deleted {cp}\n"));
            }
        }
    }
    Ok(())
}

/// `LOGS_DISABLED` names the setting that turns capture on and the way
/// to see a run's logs without it.
fn logs_disabled_hint(e: CliError) -> CliError {
    match e {
        CliError::Api { status, error, code } if code == "LOGS_DISABLED" => CliError::Api {
            status,
            error: format!(
                "{error} (the dispatcher keeps function logs only with LOWCODE_FAAS_FUNCTION_LOGS=true; \
                 `faas invoke NAME --logs` shows one run's logs without it)"
            ),
            code,
        },
        other => other,
    }
}

fn list_text(list: &Value, json_out: bool, table: fn(&Value) -> String) -> String {
    if json_out {
        render::pretty(list)
    } else {
        table(list)
    }
}

/// Prints a RunResult (from the server, or a local run): logs to stderr
/// when asked, the output (or, with `--json`, the whole result) to stdout,
/// and on `status: "failed"` the code and message to stderr and
/// [`CliError::RunFailed`].
pub fn report_run(result: &Value, json_out: bool, show_logs: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    if show_logs {
        match result.get("logs").and_then(Value::as_array) {
            Some(logs) => {
                for entry in logs {
                    emit(io.err, &format!("{}\n", render::run_log_line(entry)));
                }
            }
            // Only a server older than `include_logs` leaves them out.
            None => emit(io.err, "[the server sent no logs]\n"),
        }
        if result.get("logs_truncated").and_then(Value::as_bool) == Some(true) {
            emit(io.err, "[logs truncated]\n");
        }
    }
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    if json_out {
        emit(io.out, &render::pretty(result));
    } else if status == "success" {
        emit(io.out, &render::pretty(result.get("output").unwrap_or(&Value::Null)));
    }
    if status == "success" {
        return Ok(());
    }
    let field = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let code = match field("error_code") {
        c if c.is_empty() => "UNKNOWN".to_owned(),
        c => c,
    };
    let message = field("error_message");
    emit(io.err, &format!("faas: run failed: {code}: {message}\n"));
    Err(CliError::RunFailed { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(result: Value, json_out: bool, logs: bool) -> (Result<(), CliError>, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut stdin: &[u8] = b"";
        let r = report_run(
            &result,
            json_out,
            logs,
            &mut Io {
                out: &mut out,
                err: &mut err,
                stdin: &mut stdin,
            },
        );
        (r, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn a_successful_run_prints_its_output() {
        let (r, out, err) = report(
            json!({"status":"success","output":{"ok":true},
                   "logs":[{"stream":"stdout","level":"log","time":"T","message":"hi"}]}),
            false,
            true,
        );
        assert!(r.is_ok());
        assert_eq!(out, "{\n  \"ok\": true\n}\n");
        assert_eq!(err, "T log   hi\n");
    }

    #[test]
    fn asking_for_logs_a_server_does_not_send_says_so() {
        let (r, _, err) = report(json!({"status":"success","output":{}}), false, true);
        assert!(r.is_ok());
        assert_eq!(err, "[the server sent no logs]\n");
    }

    #[test]
    fn logs_only_when_asked() {
        let (_, _, err) = report(
            json!({"status":"success","output":{},"logs":[{"message":"hi"}],"logs_truncated":true}),
            false,
            false,
        );
        assert_eq!(err, "");
    }

    #[test]
    fn a_failed_run_is_exit_1_with_code_on_stderr() {
        let (r, out, err) = report(
            json!({"status":"failed","error_code":"HANDLER_THROW","error_message":"boom",
                   "output":{"ok":false}}),
            false,
            false,
        );
        assert_eq!(r.unwrap_err().exit_code(), 1);
        assert_eq!(out, "");
        assert_eq!(err, "faas: run failed: HANDLER_THROW: boom\n");
    }

    #[test]
    fn json_prints_the_whole_result_even_when_failed() {
        let result = json!({"status":"failed","error_code":"TIMEOUT","error_message":"t"});
        let (r, out, _) = report(result.clone(), true, false);
        assert!(r.is_err());
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), result);
    }
}
