//! The server's own log: start-up, warnings, errors, and with `-v`/`-vv` the
//! trace. (What was served goes to the access log, `access_log`.)
//!
//! It goes to stderr, or with `--log-file PATH` to a file that SIGHUP and
//! SIGUSR1 reopen ([`reopen`]), so that logrotate can rename it and signal.
//! When stderr is journald's (systemd says so in `JOURNAL_STREAM`), each line
//! starts with its syslog priority (`<4>` for a warning) instead of a time
//! stamp: the journal stamps lines itself, and `journalctl -p warning` then
//! finds the warnings.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::log_file::LogFile;

/// The log file, when there is one. Every thread's log lines go through it.
static FILE: OnceLock<Mutex<LogFile>> = OnceLock::new();

/// Sets up the process's logger: `filter` (from -v/-q) unless RUST_LOG says
/// otherwise, to stderr or to `file`.
pub fn init(filter: &str, file: Option<&Path>) -> io::Result<()> {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter));
    builder.format_timestamp_millis();
    if file.is_none() && stderr_is_the_journal() {
        builder.format(|out, record| {
            writeln!(
                out,
                "<{}>{}: {}",
                syslog_priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    if let Some(path) = file {
        let opened = LogFile::open(path)?;
        if FILE.set(Mutex::new(opened)).is_err() {
            return Err(io::Error::other("the log is already set up"));
        }
        // env_logger formats a whole line, then writes it in one call.
        builder.target(env_logger::Target::Pipe(Box::new(ToFile)));
    }
    builder.try_init().map_err(io::Error::other)
}

/// Reopens `--log-file` (after logrotate renamed it); the line saying so is
/// the new file's first. Without a log file, nothing to do.
pub(crate) fn reopen() {
    let Some(file) = FILE.get() else {
        return;
    };
    // The guard is gone before logging: the logger takes the same lock.
    let reopened = lock(file).reopen();
    match reopened {
        Ok(()) => log::info!("log file reopened"),
        Err(e) => log::error!("cannot reopen the log file ({e}); still writing to the old one"),
    }
}

/// The log file's path, if there is one.
pub(crate) fn file_path() -> Option<PathBuf> {
    FILE.get().map(|file| lock(file).path().to_path_buf())
}

/// Makes `uid` the log file's owner, if root owns it ([`LogFile::hand_to`]).
pub(crate) fn hand_file_to(uid: u32) -> io::Result<()> {
    match FILE.get() {
        Some(file) => lock(file).hand_to(uid),
        None => Ok(()),
    }
}

/// From now on, reopen the log file at `path` (its name from inside a
/// `--chroot`).
pub(crate) fn rename_file(path: PathBuf) {
    if let Some(file) = FILE.get() {
        lock(file).rename(path);
    }
}

/// Whether stderr is the stream systemd connected to the journal: the
/// `device:inode` in `JOURNAL_STREAM` is stderr's own (a child that inherited
/// the variable with another stderr is not fooled).
fn stderr_is_the_journal() -> bool {
    let Some((device, inode)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        v.split_once(':')
            // In the platform's own types: their widths differ (a 32-bit
            // inode number on 32-bit ARM, a signed device on macOS).
            .map(|(d, i)| (d.parse::<libc::dev_t>(), i.parse::<libc::ino_t>()))
    }) else {
        return false;
    };
    // SAFETY: fstat writes into the struct we own.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut stat) } != 0 {
        return false;
    }
    device == Ok(stat.st_dev) && inode == Ok(stat.st_ino)
}

/// The syslog priority of a level (sd-daemon(3)'s `<N>` prefixes).
fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// A log line is worth more than a poisoned lock: a thread that panicked while
/// writing cannot have left the file in a state we care about.
fn lock(file: &Mutex<LogFile>) -> MutexGuard<'_, LogFile> {
    file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The logger's target: whatever file [`FILE`] holds now.
struct ToFile;

impl Write for ToFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match FILE.get() {
            Some(file) => lock(file).write(data),
            None => Ok(data.len()),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match FILE.get() {
            // One lock for the whole line, so lines from two threads never mix.
            Some(file) => lock(file).write_all(data),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
