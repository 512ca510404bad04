//! Uploads to /files/ lose nothing and leave nothing half-written.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Model, Server, read_response};

every_model!(
    a_client_that_leaves_mid_body_leaves_no_file,
    concurrent_uploads_of_different_names,
    replacing_a_file_is_atomic,
    a_full_disk_is_507_and_leaves_nothing,
    a_read_only_store_is_500_and_leaves_nothing,
);

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn store(model: Model, dir: &Path) -> Server {
    Server::start_store(model, dir, &[])
}

fn a_client_that_leaves_mid_body_leaves_no_file(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let server = store(model, dir.path());
    let mut stream = server.connect();
    stream
        .write_all(b"POST /files/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    stream.write_all(&[b'x'; 30_000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        entries(dir.path()).len(),
        1,
        "only the hidden temporary file while it uploads"
    );
    assert!(!dir.path().join("partial").exists());
    drop(stream);
    assert!(
        common::eventually(Duration::from_secs(3), || entries(dir.path()).is_empty()),
        "{:?}",
        entries(dir.path())
    );
}

fn concurrent_uploads_of_different_names(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let server = store(model, dir.path());
    let bodies: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 200_000]).collect();
    let mut streams: Vec<_> = (0..4)
        .map(|i| {
            let mut s = server.connect();
            s.write_all(
                format!("POST /files/f{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    // Interleave the bodies in slices.
    for offset in (0..200_000).step_by(25_000) {
        for (stream, body) in streams.iter_mut().zip(&bodies) {
            stream.write_all(&body[offset..offset + 25_000]).unwrap();
        }
    }
    for stream in &mut streams {
        assert_eq!(read_response(stream, false).status, 201);
    }
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(
            &std::fs::read(dir.path().join(format!("f{i}"))).unwrap(),
            body
        );
    }
    assert_eq!(entries(dir.path()), vec!["f0", "f1", "f2", "f3"]);
}

fn replacing_a_file_is_atomic(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let server = store(model, dir.path());
    let old = vec![b'o'; 100_000];
    let new = vec![b'n'; 150_000];
    let upload = |body: &[u8]| {
        let mut head = format!(
            "POST /files/doc HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(body);
        head
    };
    let mut stream = server.connect();
    stream.write_all(&upload(&old)).unwrap();
    assert_eq!(read_response(&mut stream, false).status, 201);

    // Half of the new version is in; readers still get the whole old one.
    let raw = upload(&new);
    let half = raw.len() / 2;
    stream.write_all(&raw[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        assert_eq!(server.get("/files/doc").body, old);
    }
    stream.write_all(&raw[half..]).unwrap();
    assert_eq!(read_response(&mut stream, false).status, 201);
    assert_eq!(server.get("/files/doc").body, new);
    assert_eq!(entries(dir.path()), vec!["doc"]);
}

/// A tiny tmpfs of `size`, unmounted when dropped; `None` where this process may
/// not mount (not root, or no mount namespace rights).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn a_full_disk_is_507_and_leaves_nothing(model: Model) {
    let Some(disk) = SmallDisk::mount("256k") else {
        common::skip(
            "cannot mount a small tmpfs here (needs root); the 507 mapping is unit-tested in src/app/file_store.rs",
        );
        return;
    };
    let server = store(model, disk.path());
    let mut stream = server.connect();
    let body = vec![b'z'; 1 << 20];
    stream
        .write_all(
            format!(
                "POST /files/toolarge HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let _ = stream.write_all(&body);
    let r = read_response(&mut stream, false);
    assert_eq!((r.status, r.reason.as_str()), (507, "Insufficient Storage"));
    assert!(
        common::eventually(Duration::from_secs(3), || entries(disk.path()).is_empty()),
        "{:?}",
        entries(disk.path())
    );
    // A small upload still fits afterwards.
    let r =
        server.request("POST /files/small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nsmall");
    assert_eq!(r.status, 201);
}

fn a_read_only_store_is_500_and_leaves_nothing(model: Model) {
    let Some(disk) = SmallDisk::mount("256k") else {
        common::skip(
            "cannot mount a small tmpfs here (needs root); the 500 mapping is unit-tested in src/app/file_store.rs",
        );
        return;
    };
    std::fs::write(disk.path().join("existing"), b"keep me").unwrap();
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(disk.path())
        .status()
        .unwrap();
    assert!(remount.success());
    let server = store(model, disk.path());
    let r =
        server.request("POST /files/existing HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nnew");
    assert_eq!(r.status, 500);
    assert_eq!(
        std::fs::read(disk.path().join("existing")).unwrap(),
        b"keep me"
    );
    assert_eq!(server.get("/files/existing").body, b"keep me");
}
