//! The `oneloop` binary: parse the command line, set up logging, run the server.

use std::process::ExitCode;

use oneloop::{Cli, CliError};

fn main() -> ExitCode {
    let checking = std::env::args_os().any(|a| a == "--check-config");
    let cli = match Cli::from_command_line(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(CliError::Usage(error)) => error.exit(),
        Err(CliError::File(errors)) => {
            for error in errors {
                eprintln!("oneloop: {error}");
            }
            return ExitCode::from(if checking { 1 } else { 2 });
        }
    };
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

    let check = cli.check_config.is_some();
    let settings = cli.effective_settings();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            for line in message.lines() {
                eprintln!("oneloop: {line}");
            }
            return ExitCode::from(if check { 1 } else { 2 });
        }
    };
    if check {
        // As `nginx -t`: what would run, then the verdict.
        print!("{settings}");
        if let Some(sites) = config.describe_sites() {
            print!("\n{sites}");
        }
        println!("\nthe configuration is good");
        return ExitCode::SUCCESS;
    }
    match oneloop::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oneloop: {error}");
            ExitCode::FAILURE
        }
    }
}
