//! `faas`: the lowcode-faas command line (see the crate docs of `faas_cli`).

use std::process::ExitCode;

use clap::Parser;
use faas_cli::{cli::Cli, Io};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2.
    let cli = Cli::parse();
    let (stdout, stderr, stdin) = (std::io::stdout(), std::io::stderr(), std::io::stdin());
    let (mut out, mut err, mut input) = (stdout.lock(), stderr.lock(), stdin.lock());
    let code = faas_cli::run(
        cli,
        &mut Io {
            out: &mut out,
            err: &mut err,
            stdin: &mut input,
        },
    )
    .await;
    ExitCode::from(code)
}
