//! `routing-sim`: prints the Markdown comparison of routing policies (see `--help`).

use std::io::Write as _;
use std::process::ExitCode;

use faas_sim::report::{self, ArgsError, Params};

fn main() -> ExitCode {
    let params = match Params::parse(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(ArgsError::Help) => return print(report::USAGE),
        Err(error) => {
            eprintln!("routing-sim: {error}");
            return ExitCode::from(2);
        }
    };
    print(&report::run(&params))
}

fn print(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routing-sim: cannot write the report: {e}");
            ExitCode::FAILURE
        }
    }
}
