//! `--config FILE`: the command line, written down, and the sites no flag
//! can express.
//!
//! Every long flag is a key of the same name at the top of the file
//! (`max-connections = 500`, `listing = true`, `allow = ["10.0.0.0/8"]`),
//! and `root` is the positional ROOT. The file's keys become arguments put
//! before the command line's, and one the command line gives itself is left
//! out: a flag on the command line overrides the file. So each key means
//! exactly what its flag means, checked by the same code.
//!
//! `[[site]]` tables (with their `[[site.rule]]`s) are read here into plain
//! data; `cli.rs` checks them against the system and `app::sites` compiles
//! them. Every error names the file, its line and its column.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// Flags that make no sense in a file: they are commands, not settings.
const NOT_IN_A_FILE: [&str; 5] = ["config", "check-config", "hash-password", "help", "version"];

/// A site as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SiteFile {
    #[serde(default)]
    pub(crate) hosts: Vec<String>,
    pub(crate) root: Option<PathBuf>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    #[serde(default)]
    pub(crate) error_pages: BTreeMap<String, String>,
    #[serde(default, rename = "rule")]
    pub(crate) rules: Vec<RuleFile>,
    pub(crate) auth_file: Option<PathBuf>,
    pub(crate) listing: Option<bool>,
    pub(crate) compress: Option<bool>,
    pub(crate) hidden: Option<bool>,
    pub(crate) follow_symlinks: Option<bool>,
    pub(crate) access_log: Option<PathBuf>,
}

/// A rule as the file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RuleFile {
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) redirect: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) try_files: Option<Vec<String>>,
    pub(crate) auth_file: Option<PathBuf>,
    pub(crate) listing: Option<bool>,
    pub(crate) compress: Option<bool>,
    pub(crate) hidden: Option<bool>,
    pub(crate) cors_origins: Option<Vec<String>>,
}

/// Only the sites, read with their positions.
#[derive(Deserialize)]
struct Sites {
    #[serde(default)]
    site: Vec<Spanned<SiteFile>>,
}

/// One key at the top of the file, as arguments for its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) key: String,
    /// `--key value`, `--key` for `true`, repeated for a list; the
    /// positional ROOT as itself.
    pub(crate) args: Vec<OsString>,
    /// Where it is written: `FILE:LINE:COLUMN`.
    pub(crate) at: String,
}

/// What a configuration file says.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    pub(crate) path: PathBuf,
    pub(crate) settings: Vec<Setting>,
    /// Each site, with where it starts.
    pub(crate) sites: Vec<(SiteFile, String)>,
    /// What is wrong with it, each with its place; the settings and sites
    /// read despite them are there, to be checked for more.
    pub(crate) errors: Vec<String>,
}

/// How one flag takes its value, as clap declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// A switch: `true` gives it, `false` leaves it out.
    Switch,
    /// A count (`-v -v`): a number.
    Count,
    /// One value.
    Value,
    /// Any number of values: a list, or one value.
    Values,
    /// The positional ROOT.
    Positional,
}

impl ConfigFile {
    /// Reads `path`. `flag` says how each key's flag takes its value, or
    /// `None` for a key that is no flag. An error here means the file could
    /// not be read or parsed; what is wrong with its keys is in `errors`.
    pub(crate) fn read(
        path: &Path,
        flag: impl Fn(&str) -> Option<Takes>,
    ) -> Result<ConfigFile, Vec<String>> {
        // Through the keeper on a reload after root is given up: the file
        // may be root's alone, like the keys it names.
        let text = crate::system::keeper::read_to_string(path)
            .map_err(|e| vec![format!("--config {}: {e}", path.display())])?;
        let place = |span: Option<Range<usize>>| place(path, &text, span);
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> = toml::from_str(&text)
            .map_err(|e| vec![format!("{}: {}", place(e.span()), e.message())])?;
        let mut errors = Vec::new();
        let mut settings = Vec::new();
        for (key, value) in &table {
            let name = key.get_ref().as_str();
            if name == "site" {
                continue;
            }
            let at = place(Some(key.span()));
            let takes = match flag(name) {
                Some(_) if NOT_IN_A_FILE.contains(&name) => {
                    errors.push(format!("{at}: {name} is a command, not a setting"));
                    continue;
                }
                Some(takes) => takes,
                None => {
                    errors.push(format!(
                        "{at}: no setting {name} (every long flag of oneloop --help is one, \
                         without its --; sites are [[site]] tables)"
                    ));
                    continue;
                }
            };
            match args_of(name, takes, value.get_ref()) {
                Ok(args) => settings.push(Setting {
                    key: name.to_owned(),
                    args,
                    at,
                }),
                Err(why) => errors.push(format!("{}: {name}: {why}", place(Some(value.span())))),
            }
        }
        let sites = match toml::from_str::<Sites>(&text) {
            Ok(sites) => sites
                .site
                .into_iter()
                .map(|s| {
                    let at = place(Some(s.span()));
                    (s.into_inner(), at)
                })
                .collect(),
            Err(e) => {
                errors.push(format!("{}: {}", place(e.span()), e.message()));
                Vec::new()
            }
        };
        Ok(ConfigFile {
            path: path.to_owned(),
            settings,
            sites,
            errors,
        })
    }
}

/// A value as the arguments its flag would be given.
fn args_of(key: &str, takes: Takes, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let flag = OsString::from(format!("--{key}"));
    let scalar = |value: &toml::Value| -> Result<OsString, String> {
        match value {
            toml::Value::String(s) => Ok(s.into()),
            toml::Value::Integer(n) => Ok(n.to_string().into()),
            toml::Value::Float(x) => Ok(x.to_string().into()),
            other => Err(format!("a string or a number, not {}", other.type_str())),
        }
    };
    match (takes, value) {
        (Takes::Switch, toml::Value::Boolean(true)) => Ok(vec![flag]),
        (Takes::Switch, toml::Value::Boolean(false)) => Ok(vec![]),
        (Takes::Switch, other) => Err(format!("true or false, not {}", other.type_str())),
        (Takes::Count, toml::Value::Integer(n)) if (0..=4).contains(n) => {
            Ok(vec![flag; *n as usize])
        }
        (Takes::Count, _) => Err("a number from 0 to 4".into()),
        (Takes::Positional, value) => Ok(vec![scalar(value)?]),
        (Takes::Value, value) => Ok(vec![flag, scalar(value)?]),
        (Takes::Values, toml::Value::Array(items)) => {
            let mut args = Vec::with_capacity(items.len() * 2);
            for item in items {
                args.push(flag.clone());
                args.push(scalar(item)?);
            }
            Ok(args)
        }
        (Takes::Values, value) => Ok(vec![flag, scalar(value)?]),
    }
}

/// `FILE:LINE:COLUMN` of a byte offset (both counted from 1, the column in
/// characters), or the file alone when there is no span.
fn place(path: &Path, text: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return path.display().to_string();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{column}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(key: &str) -> Option<Takes> {
        match key {
            "root" => Some(Takes::Positional),
            "port" | "config" => Some(Takes::Value),
            "listing" | "hidden" => Some(Takes::Switch),
            "verbose" => Some(Takes::Count),
            "allow" => Some(Takes::Values),
            _ => None,
        }
    }

    fn read(text: &str) -> Result<ConfigFile, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneloop.toml");
        std::fs::write(&path, text).unwrap();
        let relative = |errors: Vec<String>| -> Vec<String> {
            // Names relative to the folder, for the assertions.
            let dir = dir.path().display().to_string();
            errors.into_iter().map(|e| e.replace(&dir, "DIR")).collect()
        };
        match ConfigFile::read(&path, flags) {
            Ok(file) if file.errors.is_empty() => Ok(file),
            Ok(file) => Err(relative(file.errors)),
            Err(errors) => Err(relative(errors)),
        }
    }

    fn args(file: &ConfigFile) -> Vec<String> {
        let all = file.settings.iter().flat_map(|s| s.args.iter());
        all.map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn each_key_becomes_its_flag() {
        let file = read(
            "root = \"/srv\"\nport = 8080\nlisting = true\nhidden = false\nverbose = 2\n\
             allow = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        assert_eq!(
            args(&file),
            [
                "--allow",
                "10.0.0.0/8",
                "--allow",
                "::1",
                "--listing",
                "--port",
                "8080",
                "/srv",
                "--verbose",
                "--verbose"
            ]
        );
    }

    #[test]
    fn errors_name_their_line_and_column_all_of_them() {
        let errors =
            read("port = 80\nlistening = true\nlisting = \"yes\"\nconfig = \"x\"\n").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("DIR/oneloop.toml:2:1: no setting listening"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("DIR/oneloop.toml:3:11: listing: true or false"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains(":4:1: config is a command"))
        );
        let syntax = read("port = \n").unwrap_err();
        assert!(syntax[0].starts_with("DIR/oneloop.toml:1:"), "{syntax:?}");
    }

    #[test]
    fn sites_and_rules_are_read_with_their_keys() {
        let file = read(
            "[[site]]\nhosts = [\"example.org\"]\nroot = \"/srv/a\"\n\
             error-pages = { 404 = \"/404.html\" }\n\
             [[site.rule]]\npath = \"/old\"\nredirect = \"/new\"\nstatus = 308\n\
             [[site.rule]]\npath = \"/app/*\"\ntry-files = [\"{path}\", \"/app/index.html\"]\n",
        )
        .unwrap();
        let (site, at) = &file.sites[0];
        assert!(at.ends_with(":1:1") || at.contains(":2:"), "{at}");
        assert_eq!(site.hosts, ["example.org"]);
        assert_eq!(site.error_pages["404"], "/404.html");
        assert_eq!(site.rules[0].status, Some(308));
        assert_eq!(site.rules[1].try_files.as_ref().unwrap().len(), 2);
        let errors = read("[[site]]\nhost = [\"x\"]\n").unwrap_err();
        assert!(errors[0].contains("unknown field `host`"), "{errors:?}");
        assert!(errors[0].starts_with("DIR/oneloop.toml:2:1"), "{errors:?}");
    }
}
