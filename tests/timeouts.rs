//! Slow clients, with short configured timeouts: each is cut off on time, and
//! none of them delays anyone else.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Model, Server, closes_within, read_response};

every_model!(
    a_slowloris_head_gets_408_on_time_however_it_trickles,
    a_connection_that_sends_nothing_is_closed_quietly,
    idle_keep_alive_connections_are_closed,
    a_stalled_body_gets_408,
    a_client_that_stops_reading_is_dropped,
);

fn a_slowloris_head_gets_408_on_time_however_it_trickles(model: Model) {
    let server = Server::start_model(model, &["--header-timeout", "1"]);
    let mut stream = server.connect();
    let started = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // One byte every 100 ms: progress, but never a complete head.
    let mut closed_after = None;
    for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(60)
    {
        if stream.write_all(&[*byte]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if stream.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let elapsed = closed_after.expect("the server answered or closed");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(1800),
        "{elapsed:?}"
    );
    let r = read_response(&mut stream, false);
    assert_eq!((r.status, r.reason.as_str()), (408, "Request Timeout"));
    assert!(closes_within(&mut stream, Duration::from_secs(2)));
}

/// Run for every model but the pool: a pool of N threads held by 200 stalled
/// clients makes a fresh one wait, which is that model's documented weakness.
mod two_hundred_stalled_clients_do_not_delay_a_fresh_one {
    use super::common::Model;

    #[test]
    fn event_loop() {
        super::two_hundred_stalled_clients_do_not_delay_a_fresh_one(Model::Loop)
    }
    #[test]
    fn workers() {
        super::two_hundred_stalled_clients_do_not_delay_a_fresh_one(Model::Workers)
    }
    #[test]
    fn threads() {
        super::two_hundred_stalled_clients_do_not_delay_a_fresh_one(Model::Threads)
    }
}

fn two_hundred_stalled_clients_do_not_delay_a_fresh_one(model: Model) {
    let server = Server::start_model(model, &["--header-timeout", "3"]);
    let mut stalled: Vec<_> = (0..200)
        .map(|i| {
            let mut s = server.connect();
            s.write_all(format!("GET /echo/{i} HTTP/1.1\r\nHo").as_bytes())
                .unwrap();
            s
        })
        .collect();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(server.get("/echo/fresh").body, b"fresh");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    // And every stalled one is eventually cut off.
    let first = stalled.first_mut().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(read_response(first, false).status, 408);
}

fn a_connection_that_sends_nothing_is_closed_quietly(model: Model) {
    let server = Server::start_model(model, &["--header-timeout", "0.5"]);
    let mut stream = server.connect();
    let started = Instant::now();
    assert!(
        closes_within(&mut stream, Duration::from_secs(3)),
        "closed without a word"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
}

fn idle_keep_alive_connections_are_closed(model: Model) {
    let server = Server::start_model(model, &["--keep-alive-timeout", "0.5"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).body, b"a");
    let started = Instant::now();
    assert!(closes_within(&mut stream, Duration::from_secs(3)));
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(400) && idle < Duration::from_millis(1500),
        "{idle:?}"
    );
}

fn a_stalled_body_gets_408(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_store(model, dir.path(), &["--body-timeout", "0.5"]);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /files/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome")
        .unwrap();
    // Progress keeps it alive...
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(b"more").unwrap();
    }
    // ...a pause does not.
    let r = read_response(&mut stream, false);
    assert_eq!(r.status, 408);
    assert!(
        common::eventually(Duration::from_secs(2), || std::fs::read_dir(dir.path())
            .unwrap()
            .count()
            == 0),
        "no partial upload left"
    );
}

fn a_client_that_stops_reading_is_dropped(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = vec![7u8; 32 << 20];
    std::fs::write(dir.path().join("big"), &big).unwrap();
    let server = Server::start_store(model, dir.path(), &["--send-timeout", "0.5", "-v"]);
    let baseline = server.open_descriptors();
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /files/big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Read a little, then stop: the socket buffers fill and the server stalls.
    let mut first = [0u8; 1024];
    stream.read_exact(&mut first).unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || server
            .log()
            .contains("stopped reading")),
        "{}",
        server.log()
    );
    assert!(
        common::eventually(Duration::from_secs(2), || server.open_descriptors()
            <= baseline),
        "the file and socket were released"
    );
    // What the client reads now ends early: the server gave up on it.
    let mut received = first.len();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if common::tls::is_a_close(&e) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(received < big.len(), "received {received}");
    assert_eq!(server.get("/echo/still-serving").status, 200);
}
