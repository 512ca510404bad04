//! Opening files to serve, safely.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading if it is a regular file and not a symbolic link.
///
/// `O_NONBLOCK` keeps a FIFO planted in a served folder from blocking the whole
/// loop in `open(2)` waiting for a writer (it has no effect on regular files);
/// `O_NOFOLLOW` refuses a final component that is a symlink.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
