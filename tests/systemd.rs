//! systemd: socket activation (the listeners it passes become the server's)
//! and notification (`READY=1`, `STOPPING=1`), tested without systemd itself
//! by doing what it does, and through Debian's `systemd-socket-activate`
//! where that is installed.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, read_response};

/// A command that starts oneloop as systemd would: `fds` at descriptors 3,
/// 4, ..., `LISTEN_PID` the server's own pid, `LISTEN_FDS` how many, and
/// `LISTEN_FDNAMES` their names. Bash (dash cannot name descriptors above 9) takes the pid and moves the
/// descriptors, then becomes oneloop (same pid).
fn activated(fds: &[RawFd], names: Option<&str>, pid: &str, args: &[&str]) -> Command {
    let mut script = format!("export LISTEN_PID={pid} LISTEN_FDS={}; ", fds.len());
    if let Some(names) = names {
        script.push_str(&format!("export LISTEN_FDNAMES={names}; "));
    }
    // Through high numbers first, so that no move overwrites a source.
    script.push_str("exec \"$0\" \"$@\"");
    for (i, fd) in fds.iter().enumerate() {
        script.push_str(&format!(" {}<&{fd}", 100 + i));
    }
    for i in 0..fds.len() {
        script.push_str(&format!(" {}<&{} {}<&-", 3 + i, 100 + i, 100 + i));
    }
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_oneloop"))
        .args(args);
    let inherited = fds.to_vec();
    // SAFETY: fcntl is async-signal-safe, as pre_exec requires. In the child
    // only, the sockets stop being close-on-exec, so the shell gets them.
    unsafe {
        command.pre_exec(move || {
            for &fd in &inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

#[test]
fn the_socket_systemd_passes_is_served_in_every_model() {
    for model in [
        &[][..],
        &["--workers", "2"][..],
        &["--model", "threads"][..],
        &["--model", "pool", "--threads", "4"][..],
    ] {
        let socket = listener();
        let port = socket.local_addr().unwrap().port();
        let mut args = vec!["--port", "1"];
        args.extend_from_slice(model);
        let command = activated(&[socket.as_raw_fd()], None, "$$", &args);
        let server = Server::from_command(command, &args);
        assert_eq!(server.addr.port(), port, "{model:?}: the passed socket");
        assert!(server.log().contains("(sockets from systemd)"));
        for i in 0..4 {
            let path = format!("/echo/{i}");
            assert_eq!(
                server.get(&path).body,
                i.to_string().as_bytes(),
                "{model:?}"
            );
        }
    }
}

#[test]
fn a_socket_named_redirect_sends_clients_to_https() {
    let (https, plain) = (listener(), listener());
    let https_port = https.local_addr().unwrap().port();
    let mut args: Vec<String> = common::tls::server_args();
    args.push("--hsts".into());
    args.push("60".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let fds = [https.as_raw_fd(), plain.as_raw_fd()];
    let command = activated(&fds, Some("web:redirect"), "$$", &args);
    let server = Server::from_command(command, &args);
    assert!(server.tls, "the first socket speaks HTTPS");
    assert!(
        server.log().contains(&format!(
            "http://{} (redirect to HTTPS)",
            plain.local_addr().unwrap()
        )),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/echo/secure").body, b"secure");
    let mut stream = TcpStream::connect(plain.local_addr().unwrap()).unwrap();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /a?b HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, false);
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location"),
        Some(format!("https://example.test:{https_port}/a?b").as_str())
    );
}

#[test]
fn variables_meant_for_another_process_are_left_alone() {
    let socket = listener();
    let passed_port = socket.local_addr().unwrap().port();
    // LISTEN_PID names pid 1: the sockets are not ours; bind our own.
    let args = ["--port", "0"];
    let command = activated(&[socket.as_raw_fd()], None, "1", &args);
    let server = Server::from_command(command, &args);
    assert_ne!(server.addr.port(), passed_port);
    assert!(!server.log().contains("systemd"), "{}", server.log());
    assert_eq!(server.get("/echo/own").body, b"own");
}

fn refused(command: &mut Command, needle: &str) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sockets_oneloop_cannot_serve_are_refused_at_start() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        &mut activated(&[udp.as_raw_fd()], None, "$$", &[]),
        "socket 3 passed by systemd: not a stream socket",
    );
    let socket = listener();
    refused(
        &mut activated(&[socket.as_raw_fd()], None, "$$", &["--redirect-http", "0"]),
        "--redirect-http",
    );
    refused(
        &mut activated(&[socket.as_raw_fd()], Some("redirect"), "$$", &[]),
        "needs --tls-cert",
    );
}

#[test]
fn systemd_hears_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let ear = UnixDatagram::bind(&path).unwrap();
    ear.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mut server = Server::start_with_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut message = [0u8; 512];
    let n = ear.recv(&mut message).unwrap();
    let ready = String::from_utf8_lossy(&message[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(
        ready.contains(&format!("STATUS=listening on http://{}", server.addr)),
        "{ready}"
    );
    let _ = server.signal_and_wait(libc::SIGTERM);
    let n = ear.recv(&mut message).unwrap();
    assert_eq!(&message[..n], b"STOPPING=1");
}

#[test]
fn debians_systemd_socket_activate_starts_it_on_the_first_connection() {
    let Ok(tool) = which("systemd-socket-activate") else {
        common::skip("systemd-socket-activate is not installed (Debian package systemd)");
        return;
    };
    let port = listener().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut activator = Command::new(tool)
        .args(["-l", &address, env!("CARGO_BIN_EXE_oneloop"), "--port", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It listens at once; oneloop starts when the first client connects.
    let deadline = Instant::now() + common::IO_TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect(&address) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    };
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /echo/activated HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, false);
    let _ = activator.kill();
    let _ = activator.wait();
    assert_eq!(response.body, b"activated");
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
