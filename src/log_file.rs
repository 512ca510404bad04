//! A log file that can be reopened: what lets logrotate rename a log and
//! signal the server, without `copytruncate` (which loses the lines written
//! between its copy and its truncation).
//!
//! The file is opened for appending, so every write lands at its end even when
//! several descriptors share it (each worker loop writes the access log through
//! a descriptor of its own). Reopening opens the path again and only then lets
//! go of the old descriptor: if the new one cannot be opened (a missing folder,
//! a permission lost with `--user`), the log goes on into the old file and the
//! error is returned for the caller to report.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
}

impl LogFile {
    /// Opens `path` for appending, creating it if needed.
    pub(crate) fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: append(path)?,
        })
    }

    /// Opens the path again: after a rotation, a new file under the old name.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        self.file = append(&self.path)?;
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// From now on, reopen at `path` (the same file, named from inside a
    /// `--chroot`).
    pub(crate) fn rename(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Makes `uid` the file's owner if root owns it, before root is given up:
    /// otherwise the server could write through the descriptor it holds but
    /// never open the file again (a SIGHUP without a rotation would fail).
    /// The group is left alone, as nginx leaves it, so a log group such as
    /// Debian's `adm` keeps reading.
    pub(crate) fn hand_to(&self, uid: u32) -> io::Result<()> {
        if self.file.metadata()?.uid() != 0 {
            return Ok(());
        }
        std::os::unix::fs::fchown(&self.file, Some(uid), None)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }

    /// Another handle on the same file, reopened on its own.
    pub(crate) fn try_clone(&self) -> io::Result<LogFile> {
        Ok(LogFile {
            path: self.path.clone(),
            file: self.file.try_clone()?,
        })
    }
}

impl Write for LogFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.file.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens for appending; a new file is readable by its owner and group only
/// (logs hold clients' addresses).
fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_follows_the_name_not_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut log = LogFile::open(&path).unwrap();
        log.write_all(b"one\n").unwrap();
        let rotated = dir.path().join("x.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.write_all(b"two\n").unwrap();
        log.reopen().unwrap();
        log.write_all(b"three\n").unwrap();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077 & !0o040, 0, "not for others: {mode:o}");
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("x.log");
        let mut log = LogFile::open(&path).unwrap();
        let moved = dir.path().join("moved");
        std::fs::rename(&sub, &moved).unwrap();
        let error = log.reopen().unwrap_err();
        assert!(error.to_string().contains("x.log"), "{error}");
        log.write_all(b"still here\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(moved.join("x.log")).unwrap(),
            "still here\n"
        );
    }

    #[test]
    fn clones_append_to_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut a = LogFile::open(&path).unwrap();
        let mut b = a.try_clone().unwrap();
        a.write_all(b"a\n").unwrap();
        b.write_all(b"b\n").unwrap();
        a.write_all(b"c\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\nc\n");
    }
}
