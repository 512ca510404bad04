//! The `oneloop` binary: parse the command line, set up logging, run the server.

use std::process::ExitCode;

use clap::Parser;
use oneloop::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(user) = &cli.hash_password {
        return match Cli::hash_password_line(user) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("oneloop: {message}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(error) = oneloop::logging::init(cli.log_filter(), cli.log_file.as_deref()) {
        eprintln!("oneloop: --log-file {error}");
        return ExitCode::from(2);
    }
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
