//! `faas-server`: the lowcode-faas dispatcher binary.

use std::process::ExitCode;

use faas_ports::report::Report;
use faas_server::{app, init_tracing, shutdown_signal, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run-handler") {
        return run_handler(&args[1..]).await;
    }
    init_tracing();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            return ExitCode::from(2);
        }
    };
    let dispatcher = match app::build_dispatcher(settings).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            return ExitCode::FAILURE;
        }
    };
    match app::serve(dispatcher, shutdown_signal()).await {
        Ok((addr, run)) => {
            tracing::info!(%addr, "dispatcher listening");
            run.await;
            tracing::info!("dispatcher stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            ExitCode::FAILURE
        }
    }
}

/// `faas-server run-handler`: runs one handler file once on the local `node`
/// and prints its RunResult JSON on stdout (exit 0 on success, 1 on a failed
/// run, 2 on bad arguments). Service logs stay off.
async fn run_handler(args: &[String]) -> ExitCode {
    use faas_server::handler_kit::{parse_args, run_handler_with, USAGE};
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
