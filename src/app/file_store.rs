//! `/files/{name}`: a flat, read-write store in the `--directory` folder.
//!
//! `GET`/`HEAD` send the file's exact bytes as `application/octet-stream`.
//! `POST` writes the request body to a temporary file in the same folder as it
//! arrives, and renames it into place only once the whole body is in: a reader
//! sees the old file or the new one, never half of one, and a client that goes
//! away mid-body leaves nothing behind.
//!
//! A name is one path segment. Anything that could reach outside the folder
//! (`..`, `/`, `\`, percent-encoded or not) or a hidden file (a leading dot, which
//! is also how uploads in progress are named) is 403; a name that cannot be a
//! file name at all (NUL, control bytes, too long) is 400.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::methods::{self, READ_WRITE};
use super::open::{open_regular, refused};
use super::{BodySink, Reply, url};
use crate::http::{Chunk, Method, RequestHead, Response, StatusCode};

/// Longest file name on Linux file systems (NAME_MAX).
const MAX_NAME_BYTES: usize = 255;

#[derive(Debug)]
pub(super) struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub(super) fn new(dir: PathBuf) -> FileStore {
        FileStore { dir }
    }

    pub(super) fn handle(&self, request: &RequestHead, raw_name: &str) -> Reply {
        methods::only(request, READ_WRITE, || {
            let name = match decode_name(raw_name) {
                Ok(name) => name,
                Err(status) => return Reply::Respond(Response::error(status)),
            };
            match request.method() {
                Method::Post => self.upload(name),
                _ => Reply::Respond(self.download(name)),
            }
        })
    }

    fn download(&self, name: OsString) -> Response {
        let path = self.dir.join(name);
        match open_regular(&path) {
            Ok((file, metadata)) => Response::new(StatusCode::OK)
                .with_header("Content-Type", "application/octet-stream")
                .with_body(Chunk::File {
                    file: Arc::new(file),
                    offset: 0,
                    len: metadata.len(),
                }),
            Err(error) => Response::error(refused(&path, &error)),
        }
    }

    fn upload(&self, name: OsString) -> Reply {
        match Upload::begin(&self.dir, name) {
            Ok(upload) => Reply::ReadBody(Box::new(upload)),
            Err(error) => {
                super::denied::note(&self.dir, &error);
                Reply::Respond(storage_error(&error))
            }
        }
    }
}

/// Percent-decodes a store name and refuses anything that is not one plain,
/// visible file name in the store's folder.
fn decode_name(raw: &str) -> Result<OsString, StatusCode> {
    let bytes = url::decode(raw).map_err(|_| StatusCode::BAD_REQUEST)?;
    let Some(&first) = bytes.first() else {
        return Err(StatusCode::NOT_FOUND);
    };
    if first == b'.' || bytes.iter().any(|&b| b == b'/' || b == b'\\') {
        return Err(StatusCode::FORBIDDEN);
    }
    if bytes.len() > MAX_NAME_BYTES || bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(OsString::from_vec(bytes))
}

/// 507 when the disk (or quota) is full, 503 when we are out of descriptors,
/// 500 for anything else; the connection closes, since the rest of the body has
/// nowhere to go.
fn storage_error(error: &io::Error) -> Response {
    log::warn!("upload failed: {error}");
    let status = match error.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => StatusCode::INSUFFICIENT_STORAGE,
        Some(libc::EMFILE | libc::ENFILE) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Response::error(status).closing()
}

/// An upload in progress: a hidden temporary file that becomes `dest` on success
/// and disappears otherwise.
struct Upload {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
}

impl Upload {
    fn begin(dir: &std::path::Path, name: OsString) -> io::Result<Upload> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let temp = dir.join(format!(
            ".upload-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options().write(true).create_new(true).open(&temp)?;
        Ok(Upload {
            file: Some(file),
            temp,
            dest: dir.join(name),
        })
    }
}

impl BodySink for Upload {
    fn write(&mut self, data: &[u8]) -> Result<(), Response> {
        let Some(file) = self.file.as_mut() else {
            return Err(Response::error(StatusCode::INTERNAL_SERVER_ERROR).closing());
        };
        file.write_all(data).map_err(|e| storage_error(&e))
    }

    fn finish(mut self: Box<Self>) -> Response {
        // Closing the file before the rename: "created" means written and closed.
        drop(self.file.take());
        match std::fs::rename(&self.temp, &self.dest) {
            Ok(()) => Response::new(StatusCode::CREATED),
            Err(error) => storage_error(&error),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // After a successful rename the temporary name is gone and this fails
        // harmlessly; in every other case it removes the partial upload.
        let _ = std::fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::respond;
    use crate::http::test_head as head;

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("oneloop-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for raw in [
            "..",
            "../x",
            "a/b",
            "a%2Fb",
            "%2e%2e",
            "%2E%2E%2Fetc",
            "a\\b",
            "a%5Cb",
            ".hidden",
        ] {
            assert_eq!(decode_name(raw), Err(StatusCode::FORBIDDEN), "{raw}");
        }
        for raw in ["a%00b", "a%0ab", &"x".repeat(256), "100%", "%zz"] {
            assert_eq!(decode_name(raw), Err(StatusCode::BAD_REQUEST), "{raw}");
        }
        assert_eq!(decode_name(""), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            decode_name("hello%20world.txt"),
            Ok(OsString::from("hello world.txt"))
        );
        assert_eq!(decode_name("caf%C3%A9"), Ok(OsString::from("café")));
        assert_eq!(decode_name("café"), Ok(OsString::from("café")));
    }

    #[test]
    fn upload_then_download() {
        let dir = scratch_dir("roundtrip");
        let store = FileStore::new(dir.clone());
        let post = head("POST /files/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
        let Reply::ReadBody(mut sink) = store.handle(&post, "a.txt") else {
            panic!("POST should ask for the body");
        };
        sink.write(b"he").unwrap();
        sink.write(b"llo").unwrap();
        assert!(
            !dir.join("a.txt").exists(),
            "nothing visible before the body is complete"
        );
        assert_eq!(sink.finish().status(), StatusCode::CREATED);
        assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );

        let get = head("GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = respond(store.handle(&get, "a.txt"));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.body().len(), 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_abandoned_upload_leaves_nothing() {
        let dir = scratch_dir("abandon");
        let store = FileStore::new(dir.clone());
        let post = head("POST /files/b HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n");
        let Reply::ReadBody(mut sink) = store.handle(&post, "b") else {
            panic!("POST should ask for the body");
        };
        sink.write(b"part").unwrap();
        drop(sink);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_files_and_directories_are_404() {
        let dir = scratch_dir("missing");
        std::fs::create_dir(dir.join("sub")).unwrap();
        let store = FileStore::new(dir.clone());
        for name in ["nope", "sub"] {
            let get = head(&format!("GET /files/{name} HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!(
                respond(store.handle(&get, name)).status(),
                StatusCode::NOT_FOUND
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn full_disks_are_507() {
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        let r = storage_error(&full);
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(r.wants_close());
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            storage_error(&denied).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
