//! Graceful shutdown: SIGTERM or SIGINT stops accepting, closes idle
//! connections, lets responses in flight finish within the grace period, and
//! exits 0; a second signal exits at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Model, Server, closes_within, read_response};

every_model!(
    idle_connections_close_and_the_server_exits_zero,
    responses_in_flight_finish_and_newcomers_are_refused,
    the_grace_period_bounds_the_wait,
    a_second_signal_exits_at_once,
);

fn big_store(size: usize) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..size).map(|i| (i % 241) as u8).collect();
    std::fs::write(dir.path().join("big"), &content).unwrap();
    (dir, content)
}

/// Asks for the store's big file and reads its first bytes: a response in
/// flight, which the client may then leave unread.
fn download_in_flight(server: &Server) -> (common::Client, Vec<u8>) {
    let mut stream = server.connect();
    stream
        .write_all(b"GET /files/big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64];
    stream.read_exact(&mut first).unwrap();
    (stream, first)
}

fn idle_connections_close_and_the_server_exits_zero(model: Model) {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start_model(model, &[]);
        let mut idle = server.connect();
        idle.write_all(b"GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut idle, false);
        let started = Instant::now();
        let status = server.signal_and_wait(signal);
        assert_eq!(status.code(), Some(0), "signal {signal}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no in-flight work, so no waiting"
        );
        assert!(closes_within(&mut idle, Duration::from_secs(1)));
    }
}

fn responses_in_flight_finish_and_newcomers_are_refused(model: Model) {
    let (dir, content) = big_store(24 << 20);
    let mut server = Server::start_store(model, dir.path(), &["--shutdown-timeout", "20"]);
    let addr = server.addr;
    let (mut slow, head) = download_in_flight(&server);

    // SIGTERM while the download is far from done.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert!(
        common::eventually(Duration::from_secs(3), || TcpStream::connect(addr).is_err()),
        "no new connections"
    );
    assert!(server.is_running(), "still finishing the download");

    // The download completes, slowly, and ends with the connection.
    let mut rest = Vec::new();
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = slow.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut all = head;
    all.extend_from_slice(&rest);
    let text_head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head_text = String::from_utf8_lossy(&all[..text_head_end]).into_owned();
    assert!(head_text.starts_with("HTTP/1.1 200 OK\r\n"), "{head_text}");
    assert!(
        all[text_head_end..] == content[..],
        "the whole file arrived"
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits once the download is done");
    assert_eq!(status.code(), Some(0));
}

fn the_grace_period_bounds_the_wait(model: Model) {
    let (dir, _) = big_store(32 << 20);
    let mut server = Server::start_store(model, dir.path(), &["--shutdown-timeout", "0.5"]);
    // Held open, never read again.
    let _stuck = download_in_flight(&server);
    let started = Instant::now();
    let status = server.signal_and_wait(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

fn a_second_signal_exits_at_once(model: Model) {
    let (dir, _) = big_store(32 << 20);
    let mut server = Server::start_store(model, dir.path(), &["--shutdown-timeout", "30"]);
    // Held open, never read again.
    let _stuck = download_in_flight(&server);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.is_running(),
        "the first signal waits for the download"
    );
    let started = Instant::now();
    let status = server.signal_and_wait(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
}
