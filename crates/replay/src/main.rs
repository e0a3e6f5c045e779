//! `twc-replay`: see `twc-replay --help` (also `cargo xtask sim`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match twc_replay::cli::main(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twc-replay: {e}");
            ExitCode::FAILURE
        }
    }
}
