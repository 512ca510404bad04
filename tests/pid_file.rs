//! `--pid-file`: written once listening, removed at a graceful stop, a
//! running server's refused to a second one, a dead one's replaced.

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

fn pid_in(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).expect("the pid file");
    assert!(text.ends_with('\n'), "{text:?}: the pid and a newline");
    text.trim().parse().expect("a pid")
}

#[test]
fn written_at_start_and_removed_at_sigterm_and_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oneloop.pid");
        let mut server = Server::start(&["--pid-file", path.to_str().unwrap()]);
        assert_eq!(pid_in(&path), server.pid());
        assert_eq!(server.get("/").status, 200);
        let status = server.signal_and_wait(signal);
        assert!(status.success(), "{signal}: {status:?}");
        assert!(!path.exists(), "{signal}: removed at a graceful stop");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "nothing left beside it: {names:?}");
    }
}

#[test]
fn a_second_server_with_the_same_pid_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oneloop.pid");
    let first = Server::start(&["--pid-file", path.to_str().unwrap()]);
    let second = common::oneloop()
        .args(["--port", "0", "--pid-file", path.to_str().unwrap()])
        .output()
        .expect("run a second oneloop");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{:?}: {stderr}", second.status);
    assert!(
        stderr.contains(&format!("process {} is running", first.pid())),
        "a message that names the running process: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_eq!(
        pid_in(&path),
        first.pid(),
        "the first server's file is untouched"
    );
    assert_eq!(first.get("/").status, 200);
}

#[test]
fn a_stale_pid_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oneloop.pid");
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::write(&path, format!("{dead}\n")).unwrap();
    let server = Server::start(&["--pid-file", path.to_str().unwrap()]);
    assert_eq!(pid_in(&path), server.pid());
    assert!(
        server.log().contains("is not running: replacing it"),
        "{}",
        server.log()
    );
}

#[test]
fn the_configuration_file_takes_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oneloop.pid");
    let config = dir.path().join("oneloop.toml");
    std::fs::write(
        &config,
        format!("pid-file = {:?}\n", path.to_str().unwrap()),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(pid_in(&path), server.pid());
}
