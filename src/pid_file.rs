//! `--pid-file PATH`: the process id where scripts and logrotate can find
//! it, so that they signal this server and not every `oneloop` on the host.
//!
//! Three moments, each its own function, because they happen at different
//! steps of startup (`server::run`):
//!
//! 1. [`check`], before anything is bound: a file that names a live process
//!    means another server is (or seems to be) running, and this one stops
//!    with a message rather than start beside it (with `SO_REUSEPORT` two
//!    servers could even share a port without a word). A file naming a dead
//!    process is what a crash or a `kill -9` leaves: stale, replaced.
//! 2. [`PidFile::write`], once the listeners are bound (a server that never
//!    listened must not be found by its pid file): `PID\n` written to a
//!    temporary file beside it and renamed over it, so a reader sees the old
//!    file or the new one, never half of one.
//! 3. [`PidFile`]'s drop, when [`run`](crate::run) returns after a graceful
//!    stop: the file is removed, if it still names this process.
//!
//! Between the check and the write another server could write the file too;
//! the two then also race for the port, and the second bind is refused.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a pid file's contents say about the process it names.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    /// No file: nothing to say.
    Nothing,
    /// A process that is running: the file is someone's.
    Live(i32),
    /// A process that is gone, or text that names none: replace it.
    Stale(String),
}

/// Step 1: whether the server may take `path`. An error is the message to
/// stop with.
pub(crate) fn check(path: &Path) -> io::Result<()> {
    match named_by(path)? {
        Named::Nothing => Ok(()),
        Named::Live(pid) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "--pid-file {}: process {pid} is running (another oneloop?): stop it first, \
                 or remove the file if that process is not oneloop",
                path.display()
            ),
        )),
        Named::Stale(why) => {
            log::info!("--pid-file {}: {why}: replacing it", path.display());
            Ok(())
        }
    }
}

/// What the file at `path` names.
fn named_by(path: &Path) -> io::Result<Named> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Named::Nothing),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("--pid-file {}: {e}", path.display()),
            ));
        }
    };
    let Some(pid) = text.trim().parse::<i32>().ok().filter(|pid| *pid > 0) else {
        return Ok(Named::Stale(format!("{:?} names no process", text.trim())));
    };
    if pid == std::process::id() as i32 {
        // Ourselves in a past life (a container's pid 1 again): not a rival.
        return Ok(Named::Stale(format!("process {pid} is this one")));
    }
    Ok(match is_alive(pid) {
        true => Named::Live(pid),
        false => Named::Stale(format!("process {pid} is not running")),
    })
}

/// kill(pid, 0): whether a process `pid` exists. EPERM means it does (it is
/// another user's); only ESRCH says it is gone.
fn is_alive(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A pid file this process wrote; removed when dropped.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Step 2: writes this process's id to `path`, atomically.
    pub(crate) fn write(path: &Path) -> io::Result<PidFile> {
        let pid = std::process::id();
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("--pid-file {}: {e}", path.display()));
        let temporary = temporary_beside(path, pid).map_err(named)?;
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(format!("{pid}\n").as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| fs::rename(&temporary, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(named(e));
        }
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }

    /// From now on the file goes by `path` (its name inside a `--chroot`).
    pub(crate) fn rename(&mut self, path: PathBuf) {
        self.path = path;
    }
}

impl Drop for PidFile {
    /// Step 3: the file goes, unless someone has since replaced it with
    /// another process's (that one's is not ours to remove).
    fn drop(&mut self) {
        let ours =
            fs::read_to_string(&self.path).is_ok_and(|text| text.trim() == self.pid.to_string());
        if !ours {
            return;
        }
        if let Err(e) = fs::remove_file(&self.path) {
            // A folder --user may not write: the file stays, stale, and the
            // next start replaces it.
            log::warn!("--pid-file {}: not removed: {e}", self.path.display());
        }
    }
}

/// `.NAME.PID.tmp` in the pid file's own folder, so the rename stays on one
/// file system.
fn temporary_beside(path: &Path, pid: u32) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{pid}.tmp"));
    Ok(path.with_file_name(temporary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that existed and has exited (and been reaped).
    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    #[test]
    fn written_atomically_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneloop.pid");
        check(&path).unwrap();
        let file = PidFile::write(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_process_is_refused_and_a_dead_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneloop.pid");
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        fs::write(&path, format!("{parent}\n")).unwrap();
        let error = check(&path).unwrap_err().to_string();
        assert!(
            error.contains(&format!("process {parent} is running")),
            "{error}"
        );
        for stale in [format!("{}\n", dead_pid()), "garbage".into(), String::new()] {
            fs::write(&path, &stale).unwrap();
            assert!(check(&path).is_ok(), "{stale:?}");
        }
        fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        assert!(check(&path).is_ok(), "our own pid is no rival");
    }

    #[test]
    fn someone_elses_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneloop.pid");
        let file = PidFile::write(&path).unwrap();
        fs::write(&path, "1\n").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
    }
}
