//! `faas-server`: the lowcode-faas dispatcher binary.

use std::process::ExitCode;

use clap::Parser;
use faas_ports::report::Report;
use faas_server::{app, init_tracing, shutdown_signal, Settings};

/// The lowcode-faas dispatcher: the public HTTP API and the playground at
/// /ui/. With no subcommand it serves until SIGTERM/SIGINT.
#[derive(Debug, Parser)]
#[command(name = "faas-server", version, after_help = faas_http::usage::settings_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Runs one handler file once on the local node (no server, no Docker)
    /// and prints its RunResult JSON: exit 0 on success, 1 on a failed run,
    /// 2 on bad arguments.
    #[command(
        override_usage = "faas-server run-handler <handler.mjs> [--input JSON] [--env KEY=VALUE]... [--timeout-ms N] [--node BIN] [--name NAME]"
    )]
    RunHandler {
        /// The handler file, then its options: --input '{…}' (the input
        /// object), --env KEY=VALUE (repeatable), --timeout-ms N, --node BIN
        /// (default node), --name NAME (the function's name in its context).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
        args: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // --help / --version / a bad flag: answered before any setting is read.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(Command::RunHandler { args }) = cli.command {
        return faas_server::handler_kit::command(&args).await;
    }
    init_tracing();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            return ExitCode::from(2);
        }
    };
    let playground = settings.ui;
    let dispatcher = match app::build_dispatcher(settings).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            // 2 for a configuration error, as the worker.
            return ExitCode::from(e.exit_code());
        }
    };
    match app::serve(dispatcher, shutdown_signal()).await {
        Ok((addr, run)) => {
            tracing::info!(%addr, "dispatcher listening");
            if playground {
                tracing::info!(url = %app::playground_url(addr), "playground");
            }
            run.await;
            tracing::info!("dispatcher stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faas-server: {}", Report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
