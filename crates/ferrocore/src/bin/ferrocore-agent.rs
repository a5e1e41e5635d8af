//! `ferrocore-agent`: the reference device agent and load generator (see `ferrocore_agent::cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match ferrocore_agent::cli::run() {
        Ok(code) => code,
        Err(e) => ferrocore_agent::cli::report_error(&e),
    }
}
