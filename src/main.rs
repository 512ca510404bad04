//! The `oneloop` binary: parse the command line, set up logging, run the server.

use std::process::ExitCode;

use clap::Parser;
use oneloop::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(cli.log_filter()))
        .format_timestamp_millis()
        .init();
    oneloop::log_panics();

    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("oneloop: {message}");
            return ExitCode::from(2);
        }
    };
    match oneloop::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oneloop: {error}");
            ExitCode::FAILURE
        }
    }
}
