//! The logs over a server's life: logrotate renames the access log and the
//! server's own log (`--log-file`), sends SIGUSR1 or SIGHUP, and the next lines
//! land in new files, written by the same process.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Model, Server, eventually};

every_model!(usr1_and_hup_reopen_both_logs_in_the_same_process);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The access log's lines for `path`.
fn requests_for(log: &str, path: &str) -> usize {
    log.lines()
        .filter(|line| line.contains(&format!("\"GET {path} HTTP/1.1\" 200")))
        .count()
}

fn usr1_and_hup_reopen_both_logs_in_the_same_process(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let server_log = dir.path().join("oneloop.log");
    let server = Server::start_model(
        model,
        &[
            "--access-log",
            access.to_str().unwrap(),
            "--log-file",
            server_log.to_str().unwrap(),
        ],
    );
    let pid = server.pid();
    assert!(read(&server_log).contains("listening on"));
    assert_eq!(server.get("/echo/before").status, 200);
    assert!(eventually(Duration::from_secs(5), || {
        requests_for(&read(&access), "/echo/before") == 1
    }));

    for (round, (signal, name)) in [(libc::SIGUSR1, "SIGUSR1"), (libc::SIGHUP, "SIGHUP")]
        .into_iter()
        .enumerate()
    {
        // What logrotate does without copytruncate: rename, then signal.
        let rotated_access = dir.path().join(format!("access.log.{round}"));
        let rotated_server = dir.path().join(format!("oneloop.log.{round}"));
        std::fs::rename(&access, &rotated_access).unwrap();
        std::fs::rename(&server_log, &rotated_server).unwrap();
        server.signal(signal);
        assert!(
            eventually(Duration::from_secs(5), || read(&server_log)
                .contains("log file reopened")),
            "{name}: no new server log; the old one says:\n{}",
            read(&rotated_server)
        );
        assert!(read(&rotated_server).contains(name), "{name} was logged");
        let path = format!("/echo/after-{name}");
        assert_eq!(server.get(&path).status, 200, "still serving after {name}");
        assert!(
            eventually(Duration::from_secs(5), || requests_for(
                &read(&access),
                &path
            ) == 1),
            "{name}: the request after the signal is in the new access log: {:?}",
            read(&access)
        );
        assert_eq!(
            requests_for(&read(&rotated_access), &path),
            0,
            "and not in the rotated one"
        );
        assert_eq!(server.pid(), pid);
    }
    assert_eq!(
        requests_for(&read(&dir.path().join("access.log.0")), "/echo/before"),
        1,
        "the rotated log keeps what it had"
    );
}

#[test]
fn a_log_file_that_cannot_be_opened_is_refused_at_start() {
    let output = common::oneloop()
        .args(["--port", "0", "--log-file", "/no/such/dir/oneloop.log"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--log-file /no/such/dir/oneloop.log"),
        "{stderr}"
    );
}

#[test]
fn a_failed_reopen_keeps_logging_to_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let access = logs.join("access.log");
    let server = Server::start(&["--access-log", access.to_str().unwrap()]);
    // The folder goes away: the reopen cannot create a new file.
    let moved = dir.path().join("moved");
    std::fs::rename(&logs, &moved).unwrap();
    server.signal(libc::SIGUSR1);
    assert!(eventually(Duration::from_secs(5), || server
        .log()
        .contains("still writing to the old file")));
    assert_eq!(server.get("/echo/kept").status, 200);
    assert!(eventually(Duration::from_secs(5), || requests_for(
        &read(&moved.join("access.log")),
        "/echo/kept"
    ) == 1));
}

/// A pipe standing for journald's stream: the child's stderr, and the
/// `JOURNAL_STREAM` value systemd would set for it.
fn journal_pipe() -> (std::io::PipeReader, std::io::PipeWriter, String) {
    use std::os::fd::AsRawFd;
    let (reader, writer) = std::io::pipe().unwrap();
    // SAFETY: fstat writes into the struct we own.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(writer.as_raw_fd(), &mut stat) }, 0);
    let stream = format!("{}:{}", stat.st_dev, stat.st_ino);
    (reader, writer, stream)
}

/// The first line oneloop writes to stderr with `JOURNAL_STREAM` set to
/// `stream`, its stderr being `writer`.
fn first_line(writer: std::io::PipeWriter, reader: std::io::PipeReader, stream: &str) -> String {
    use std::io::BufRead;
    let mut child = common::oneloop()
        .args(["--port", "0"])
        .env("JOURNAL_STREAM", stream)
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(reader)
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn under_journald_lines_carry_their_priority_and_no_time() {
    let (reader, writer, stream) = journal_pipe();
    let line = first_line(writer, reader, &stream);
    assert!(
        line.starts_with("<6>oneloop::server: listening on http://127.0.0.1:"),
        "{line:?}"
    );
    // Inherited from a parent whose stderr was the journal: not ours.
    let (reader, writer, _) = journal_pipe();
    let line = first_line(writer, reader, "1:2");
    assert!(line.starts_with('['), "a time stamp as usual: {line:?}");
}

#[test]
fn ipv4_clients_of_a_dual_stack_socket_are_logged_as_ipv4() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        common::skip("this machine has no IPv6 for a dual-stack socket");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let server = Server::start(&["--bind", "::", "--access-log", access.to_str().unwrap()]);
    let port = server.addr.port();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /echo/v4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut answer).unwrap();
    assert!(eventually(Duration::from_secs(5), || read(&access)
        .starts_with("127.0.0.1 - - [")));
}

/// contrib/logrotate's postrotate script, with its pid file at `pid_file`
/// and a `systemctl` that finds no service (a server started by hand).
fn postrotate_script(pid_file: &Path, bin: &Path) -> String {
    let contrib = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/logrotate/oneloop"
    ))
    .unwrap();
    let script = contrib
        .split("postrotate")
        .nth(1)
        .and_then(|rest| rest.split("endscript").next())
        .expect("a postrotate script");
    let systemctl = bin.join("systemctl");
    std::fs::write(&systemctl, "#!/bin/sh\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.replace("/run/oneloop/oneloop.pid", pid_file.to_str().unwrap())
}

#[test]
fn contrib_logrotate_signals_the_pid_files_server_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("oneloop.pid");
    let (ours, other) = (dir.path().join("ours.log"), dir.path().join("other.log"));
    let ours_server = Server::start(&[
        "--access-log",
        ours.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    let other_server = Server::start(&["--access-log", other.to_str().unwrap()]);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = postrotate_script(&pid_file, &bin);
    std::fs::rename(&ours, dir.path().join("ours.log.1")).unwrap();
    std::fs::rename(&other, dir.path().join("other.log.1")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = std::process::Command::new("sh")
        .args(["-e", "-c", &script])
        .env("PATH", path)
        .status()
        .unwrap();
    assert!(ran.success(), "{ran:?}");
    assert!(
        eventually(Duration::from_secs(5), || ours.exists()),
        "the pid file's server reopened its log: {}",
        ours_server.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(!other.exists(), "the other server was not signalled");
    assert!(!other_server.log().contains("SIGUSR1"));
}
