//! `faas-server`: the lowcode-faas dispatcher binary.

use std::process::ExitCode;

use faas_ports::report::Report;
use faas_server::{app, init_tracing, shutdown_signal, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run-handler") {
        return faas_server::handler_kit::command(&args[1..]).await;
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
