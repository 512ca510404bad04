//! A bug costs one connection, never the server. The binary under test is
//! built with the `fault-injection` feature (test builds only), whose
//! `/__oneloop/panic` route panics on demand: in the router for GET, and in
//! the middle of the body for POST.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Model, Server, closes_within, read_all, read_head, read_response};

every_model!(a_panic_costs_one_connection_and_nothing_else);

const PANIC: &str = "GET /__oneloop/panic HTTP/1.1\r\nHost: x\r\n\r\n";

fn a_panic_costs_one_connection_and_nothing_else(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let mut server = Server::start_store(model, dir.path(), &[]);
    let pid = server.pid();

    // In flight before the panics: a large download, read slowly, and an idle
    // keep-alive neighbour.
    let mut download = server.connect();
    download
        .write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_head(&mut download);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut received = vec![0; 64 * 1024];
    download.read_exact(&mut received).unwrap();
    let mut neighbour = server.connect();
    neighbour
        .write_all(b"GET /echo/before HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut neighbour, false).body, b"before");

    // A panic in the router: 500, and that connection closes.
    let mut victim = server.connect();
    victim.write_all(PANIC.as_bytes()).unwrap();
    let r = read_response(&mut victim, false);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut victim, Duration::from_secs(5)));

    // Pipelined: what came before the panic is answered, in order; nothing
    // after it is.
    let mut pipelined = server.connect();
    let requests = format!(
        "GET /echo/first HTTP/1.1\r\nHost: x\r\n\r\n{PANIC}GET /echo/never HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    pipelined.write_all(requests.as_bytes()).unwrap();
    assert_eq!(read_response(&mut pipelined, false).body, b"first");
    assert_eq!(read_response(&mut pipelined, false).status, 500);
    assert!(read_all(&mut pipelined).is_empty(), "nothing after the 500");

    // A panic in the middle of a request body.
    let mut upload = server.connect();
    upload
        .write_all(b"POST /__oneloop/panic HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    let r = read_response(&mut upload, false);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));

    // Everyone else carried on: the neighbour's connection still works, and
    // the download arrives whole.
    neighbour
        .write_all(b"GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut neighbour, false).body, b"after");
    let mut rest = vec![0; big.len() - received.len()];
    download.read_exact(&mut rest).unwrap();
    received.extend_from_slice(&rest);
    assert!(received == big, "the download arrived intact");

    assert!(server.is_running());
    assert_eq!(server.pid(), pid, "the same process");
    assert_eq!(server.get("/echo/fresh").body, b"fresh");
    let log = server.log();
    assert!(
        log.contains("bug while serving \"GET /__oneloop/panic HTTP/1.1\""),
        "{log}"
    );
    assert!(
        log.contains("bug while serving \"POST /__oneloop/panic HTTP/1.1\""),
        "{log}"
    );
    assert!(log.contains("fault injection"), "the panic's own message");
}

/// A pool whose every thread has survived a panic still has every thread.
#[test]
fn a_pool_keeps_its_threads_after_panics() {
    let server = Server::start(&["--model", "pool", "--threads", "2"]);
    for _ in 0..6 {
        assert_eq!(server.request(PANIC).status, 500);
    }
    // Two connections held open at once need both threads.
    let mut first = server.connect();
    let mut second = server.connect();
    for (stream, name) in [(&mut first, "one"), (&mut second, "two")] {
        stream
            .write_all(format!("GET /echo/{name} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
    }
    assert_eq!(read_response(&mut first, false).body, b"one");
    assert_eq!(read_response(&mut second, false).body, b"two");
}
