//! Whether the account the server became can use the folders it was given.
//!
//! Root can read anything, so a server started as root and told
//! `--user www-data` finds out only after the drop that `/root/mysite`
//! (inside root's `0700` home) is out of its reach; then every request is a
//! 404 and nothing says why. So the paths are listed before the drop
//! ([`needs`]: named as they will be seen from inside a `--chroot`), and
//! checked right after it ([`warn_unusable`]) with `access(2)`, which asks the
//! kernel with the real ids: after the drop those are the account's, so this
//! is the very check the server's own opens will meet. Each failure is a
//! warning that names the flag, the path, the account and what will go
//! wrong; none stops the server (a folder may be fixed while it runs).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, LogTarget};

/// One folder the server will use, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    /// What the operator called it: `ROOT`, `site example.org's root`,
    /// `--directory`, `--access-log's folder`.
    what: String,
    path: PathBuf,
    access: Access,
    /// What goes wrong without it.
    otherwise: &'static str,
}

/// What a folder must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// List and enter: a folder served.
    Read,
    /// Create in and enter: the upload store, a log's or the pid file's folder.
    Write,
}

impl Access {
    fn mode(self) -> libc::c_int {
        match self {
            Access::Read => libc::R_OK | libc::X_OK,
            Access::Write => libc::W_OK | libc::X_OK,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Access::Read => "readable",
            Access::Write => "writable",
        }
    }
}

/// The folders `config` will have the server use, named as they will be
/// once root is given up (inside the chroot, if any: a path outside it was
/// warned about at start, and is left out here).
pub(crate) fn needs(config: &Config) -> Vec<Need> {
    let mut needs = Vec::new();
    let mut need = |what: String, path: &Path, access, otherwise| {
        let path = match &config.privileges.jail {
            Some(jail) => jail.inside(path),
            None => Some(path.to_path_buf()),
        };
        if let Some(path) = path {
            needs.push(Need {
                what,
                path,
                access,
                otherwise,
            });
        }
    };
    let every_404 = "every request for its files will be 404";
    match &config.app.sites {
        Some(sites) => {
            for (name, root) in sites.roots() {
                need(
                    format!("site {name}'s root"),
                    &root,
                    Access::Read,
                    every_404,
                );
            }
        }
        None => {
            if let Some(site) = &config.app.site {
                need("ROOT".into(), &site.root, Access::Read, every_404);
            }
        }
    }
    if let Some(dir) = &config.app.files_dir {
        need(
            "--directory".into(),
            dir,
            Access::Write,
            "uploads to /files/ will fail",
        );
    }
    let reopen = "the log cannot be made again after logrotate renames it";
    if let Some(LogTarget::File(path)) = &config.access_log {
        need(
            "--access-log's folder".into(),
            folder_of(path),
            Access::Write,
            reopen,
        );
    }
    for (name, path) in config.site_access_logs() {
        need(
            format!("site {name}'s access-log folder"),
            folder_of(&path),
            Access::Write,
            reopen,
        );
    }
    if let Some(path) = crate::logging::file_path() {
        need(
            "--log-file's folder".into(),
            folder_of(&path),
            Access::Write,
            reopen,
        );
    }
    if let Some(path) = &config.pid_file {
        need(
            "--pid-file's folder".into(),
            folder_of(path),
            Access::Write,
            "the pid file will be left behind at stop",
        );
    }
    needs
}

/// The folder a file is made in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Checks each need as the process is now, and warns of each one it cannot
/// meet. `who` names the account (`www-data`).
pub(crate) fn warn_unusable(needs: &[Need], who: &str) {
    for need in needs {
        if let Err(error) = check(&need.path, need.access) {
            log::warn!("{}", message(need, who, &error));
        }
    }
}

/// The account the process is now, for the warnings: `--user`'s name, or
/// its uid.
pub(crate) fn who(config: &Config) -> String {
    match &config.privileges.account {
        Some(account) => account.user.clone(),
        // SAFETY: geteuid has no preconditions.
        None => format!("uid {}", unsafe { libc::geteuid() }),
    }
}

fn message(need: &Need, who: &str, error: &io::Error) -> String {
    format!(
        "{} {} is not {} by {who}: {}; {}",
        need.what,
        need.path.display(),
        need.access.word(),
        error_words(error),
        need.otherwise
    )
}

/// The system's words for an error, without Rust's `(os error 13)`.
fn error_words(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// `access(2)` on `path` for `access`.
fn check(path: &Path, access: Access) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // SAFETY: a valid NUL-terminated path; access reads it and nothing else.
    match unsafe { libc::access(c_path.as_ptr(), access.mode()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_named_with_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let need = Need {
            what: "ROOT".into(),
            path: missing.clone(),
            access: Access::Read,
            otherwise: "every request for its files will be 404",
        };
        let error = check(&missing, Access::Read).unwrap_err();
        assert_eq!(
            message(&need, "www-data", &error),
            format!(
                "ROOT {} is not readable by www-data: No such file or directory; \
                 every request for its files will be 404",
                missing.display()
            )
        );
        assert!(check(dir.path(), Access::Read).is_ok());
        assert!(check(dir.path(), Access::Write).is_ok());
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_folder() {
        assert_eq!(folder_of(Path::new("access.log")), Path::new("."));
        assert_eq!(
            folder_of(Path::new("/var/log/x.log")),
            Path::new("/var/log")
        );
    }
}
