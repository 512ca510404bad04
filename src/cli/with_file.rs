//! The command line, and the configuration file it names: the file's keys
//! become the arguments of their flags, put before the command line's, and
//! a flag the command line gives itself is left out of the file's, so the
//! command line overrides the file and every value is checked by the code
//! that checks the flag.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;
use crate::config_file::{ConfigFile, SiteFile, Takes};

/// What went wrong reading the command line and its file.
#[derive(Debug)]
pub enum CliError {
    /// The command line itself: clap says it (and `--help`, `--version`).
    Usage(clap::Error),
    /// The file: every error, each with its line and column.
    File(Vec<String>),
}

/// What a configuration file added to the command line.
#[derive(Debug, Clone)]
pub(super) struct FileSettings {
    pub(super) path: PathBuf,
    /// The sites, each with where it starts in the file.
    pub(super) sites: Vec<(SiteFileShared, String)>,
    /// The flags the file set (those the command line did not).
    pub(super) keys: Vec<String>,
    /// The command line as given, to read the file again on SIGHUP.
    pub(super) command_line: Vec<OsString>,
    /// The command line with the file's settings in it.
    effective: Vec<OsString>,
}

/// A site of the file; shared, since a `Cli` is cloned nowhere but kept
/// for a reload.
pub(super) type SiteFileShared = std::sync::Arc<SiteFile>;

impl Cli {
    /// Reads the command line `argv` (the program's name first) and the file
    /// `--config` or `--check-config` names.
    pub fn from_command_line(argv: Vec<OsString>) -> Result<Cli, CliError> {
        let command = Cli::command();
        let given = match command.clone().try_get_matches_from(&argv) {
            Ok(given) => given,
            // What the command line requires may be in the file
            // (`--redirect-http` needs a certificate): read it leniently
            // here, and strictly once the file's settings are in.
            Err(_) if names_a_file(&argv) => command
                .clone()
                .ignore_errors(true)
                .try_get_matches_from(&argv)
                .map_err(CliError::Usage)?,
            Err(e) => return Err(CliError::Usage(e)),
        };
        let path = given
            .get_one::<PathBuf>("config")
            .or_else(|| given.get_one::<PathBuf>("check_config"))
            .cloned();
        let Some(path) = path else {
            return Cli::from_arg_matches(&given).map_err(CliError::Usage);
        };
        let file = ConfigFile::read(&path, |key| takes(&command, key)).map_err(CliError::File)?;
        let mut errors = file.errors.clone();
        let mut from_file = Vec::new();
        let mut keys = Vec::new();
        for setting in &file.settings {
            let Some(arg) = arg_named(&command, &setting.key) else {
                continue;
            };
            if given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
                continue; // the command line says otherwise
            }
            if let Err(e) = check_alone(arg, &setting.args) {
                errors.push(format!(
                    "{}: {}: {}",
                    setting.at,
                    setting.key,
                    first_line(&e)
                ));
            }
            from_file.extend(setting.args.iter().cloned());
            keys.push(setting.key.clone());
        }
        if !errors.is_empty() {
            return Err(CliError::File(errors));
        }
        let mut combined = Vec::with_capacity(argv.len() + from_file.len());
        combined.extend(argv.first().cloned());
        combined.extend(from_file);
        combined.extend(argv.iter().skip(1).cloned());
        let matches = command.try_get_matches_from(&combined).map_err(|e| {
            CliError::File(vec![format!(
                "{} with the command line: {}",
                path.display(),
                first_line(&e)
            )])
        })?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(CliError::Usage)?;
        cli.file = Some(FileSettings {
            path: file.path,
            sites: file
                .sites
                .into_iter()
                .map(|(site, at)| (std::sync::Arc::new(site), at))
                .collect(),
            keys,
            command_line: argv,
            effective: combined,
        });
        Ok(cli)
    }

    /// What `--check-config` prints: every setting in effect and where it
    /// came from.
    pub fn effective_settings(&self) -> String {
        let Some(file) = &self.file else {
            return String::new();
        };
        let command = Cli::command();
        let Ok(matches) = command.clone().try_get_matches_from(&file.effective) else {
            return String::new();
        };
        let mut out = String::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version", "check_config", "config"].contains(&id) {
                continue;
            }
            let key = arg.get_long().unwrap_or(id);
            let source = match matches.value_source(id) {
                _ if file.keys.iter().any(|k| k == key) => "the file",
                Some(ValueSource::CommandLine) => "the command line",
                Some(ValueSource::DefaultValue) => "default",
                _ => continue,
            };
            let value = match arg.get_action() {
                ArgAction::SetTrue => matches.get_flag(id).to_string(),
                ArgAction::Count => matches.get_count(id).to_string(),
                _ => raw_values(&matches, id),
            };
            out.push_str(&format!("{key} = {value}    # {source}\n"));
        }
        out
    }
}

fn raw_values(matches: &ArgMatches, id: &str) -> String {
    let Some(values) = matches.get_raw(id) else {
        return "none".into();
    };
    // As the file would write them: numbers bare, anything else quoted.
    let values: Vec<String> = values
        .map(|v| v.to_string_lossy().into_owned())
        .map(|v| match v.parse::<u64>() {
            Ok(_) => v,
            Err(_) => format!("{v:?}"),
        })
        .collect();
    match values.len() {
        1 => values.into_iter().next().unwrap_or_default(),
        _ => format!("[{}]", values.join(", ")),
    }
}

/// Whether the command line names a configuration file.
fn names_a_file(argv: &[OsString]) -> bool {
    argv.iter().any(|arg| {
        let arg = arg.to_string_lossy();
        ["--config", "--check-config"]
            .iter()
            .any(|flag| arg == *flag || arg.starts_with(&format!("{flag}=")))
    })
}

/// The flag whose long name is `key` (`root`: the positional ROOT).
fn arg_named<'c>(command: &'c clap::Command, key: &str) -> Option<&'c clap::Arg> {
    command.get_arguments().find(|arg| match arg.get_long() {
        Some(long) => long == key,
        None => arg.is_positional() && arg.get_id() == key,
    })
}

/// How the flag `key` takes its value, if there is such a flag.
fn takes(command: &clap::Command, key: &str) -> Option<Takes> {
    let arg = arg_named(command, key)?;
    if arg.is_positional() {
        return Some(Takes::Positional);
    }
    Some(match arg.get_action() {
        ArgAction::SetTrue => Takes::Switch,
        ArgAction::Count => Takes::Count,
        ArgAction::Append => Takes::Values,
        _ => Takes::Value,
    })
}

/// Checks one setting's values with its flag's own parser, alone (what it
/// requires of other flags is checked once all are together), so that an
/// error can name the line the value is on.
fn check_alone(arg: &clap::Arg, args: &[OsString]) -> Result<(), clap::Error> {
    let values: Vec<&OsString> = match arg.is_positional() {
        true => args.iter().collect(),
        false => args.iter().skip(1).step_by(2).collect(),
    };
    if values.is_empty() || matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::Count) {
        return Ok(()); // a switch or a count: its type was checked as the file was read
    }
    let alone = clap::Arg::new(arg.get_id().clone())
        .value_parser(arg.get_value_parser().clone())
        .num_args(1..)
        .action(ArgAction::Append);
    clap::Command::new("oneloop")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(alone)
        .try_get_matches_from(values)
        .map(drop)
}

/// The message of a clap error, without its usage, its `error: ` and the
/// name of the stand-in argument a value was checked with.
fn first_line(error: &clap::Error) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or("");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match (line.find(" for '"), line.find("...': ")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &line[..start], &line[end + 4..])
        }
        _ => line.to_owned(),
    }
}
