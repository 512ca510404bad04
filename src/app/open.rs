//! Opening files to serve, safely; what to answer when that fails; and what
//! tells one version of a file from the next.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::http::StatusCode;

/// Opens `path` for reading if it is a regular file and not a symbolic link.
///
/// `O_NONBLOCK` keeps a FIFO planted in a served folder from blocking the whole
/// loop in `open(2)` waiting for a writer (it has no effect on regular files);
/// `O_NOFOLLOW` refuses a final component that is a symlink.
pub(super) fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "not a regular file",
        ));
    }
    Ok((file, metadata))
}

/// What tells one version of a file (or directory) from another: where it
/// lives (device, inode) and its size and change times to the nanosecond. An
/// edit in place, a replacement by rename, even a `touch` or a copy that keeps
/// the old modification time (the change time moves anyway) gives a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub len: u64,
    pub modified_ns: i128,
    pub changed_ns: i128,
}

impl FileIdentity {
    pub(crate) fn of(metadata: &Metadata) -> FileIdentity {
        let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified_ns: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: nanos(metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// The status for failing to open `path` with `error` ([`open_error_status`]),
/// with a permission error logged the first time for that path.
pub(super) fn refused(path: &Path, error: &io::Error) -> StatusCode {
    super::denied::note(path, error);
    open_error_status(error)
}

/// 404 for what is not a regular file we may open (missing, a directory, a
/// symlink, a device), 403 when the system refuses us, 503 when we are out of
/// descriptors (a passing condition the client may retry).
pub(crate) fn open_error_status(error: &io::Error) -> StatusCode {
    match (error.kind(), error.raw_os_error()) {
        (_, Some(libc::EMFILE | libc::ENFILE)) => StatusCode::SERVICE_UNAVAILABLE,
        (io::ErrorKind::PermissionDenied, _) => StatusCode::FORBIDDEN,
        _ => StatusCode::NOT_FOUND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_map_to_statuses() {
        let status = |errno| open_error_status(&io::Error::from_raw_os_error(errno));
        assert_eq!(status(libc::ENOENT), StatusCode::NOT_FOUND);
        assert_eq!(status(libc::ELOOP), StatusCode::NOT_FOUND);
        assert_eq!(status(libc::EACCES), StatusCode::FORBIDDEN);
        assert_eq!(status(libc::EMFILE), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn refuses_symlinks_directories_and_fifos() {
        let dir = std::env::temp_dir().join(format!("oneloop-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("plain"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("plain"), dir.join("link")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        assert!(open_regular(&dir.join("plain")).is_ok());
        for name in ["link", "sub", "fifo", "missing"] {
            assert!(
                open_regular(&dir.join(name)).is_err(),
                "{name} should be refused"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
