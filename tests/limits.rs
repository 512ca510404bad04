//! Limits per client (`--max-connections-per-ip`, `--rate-per-ip`, `--allow`,
//! `--deny`), on every model. The clients are other loopback addresses
//! (127.0.0.2, 127.0.0.3, ...): one is held to its limit while another is
//! served.

mod common;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Client, Model, Server, closes_within, read_response};

every_model!(
    a_client_over_its_connection_cap_gets_503_while_another_is_served,
    a_client_over_its_rate_gets_429_and_keeps_its_connection,
    a_denied_client_is_closed_before_anything_is_read,
    an_allow_list_keeps_out_everyone_else,
);

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

const GET: &[u8] = b"GET /echo/hi HTTP/1.1\r\nHost: x\r\n\r\n";

/// A request on `stream`, and its response (the connection stays open).
fn ask(stream: &mut Client) -> common::Response {
    stream.write_all(GET).unwrap();
    read_response(stream, false)
}

fn a_client_over_its_connection_cap_gets_503_while_another_is_served(model: Model) {
    let server = Server::start_model(model, &["--max-connections-per-ip", "2"]);
    // Two connections of A, each answered, so each is surely held.
    let mut held: Vec<Client> = (0..2).map(|_| server.connect_from(A)).collect();
    for stream in &mut held {
        assert_eq!(ask(stream).status, 200);
    }
    let mut third = server.connect_from(A);
    let refused = ask(&mut third);
    assert_eq!(refused.status, 503, "{}", refused.raw_head);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(closes_within(&mut third, Duration::from_secs(5)));
    // B is another client: served beside A's two.
    let mut other = server.connect_from(B);
    assert_eq!(ask(&mut other).status, 200);
    // A's held connections still work, and once one closes A may connect.
    assert_eq!(ask(&mut held[0]).status, 200);
    drop(held.pop());
    assert!(
        common::eventually(Duration::from_secs(5), || {
            let mut again = server.connect_from(A);
            ask(&mut again).status == 200
        }),
        "a slot is given back when a connection closes"
    );
}

fn a_client_over_its_rate_gets_429_and_keeps_its_connection(model: Model) {
    let server = Server::start_model(model, &["--rate-per-ip", "20", "--rate-burst", "3"]);
    let mut stream = server.connect_from(A);
    // Pipelined, so all five arrive within a few milliseconds.
    stream.write_all(&GET.repeat(5)).unwrap();
    let statuses: Vec<u16> = (0..5)
        .map(|_| read_response(&mut stream, false))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    stream.write_all(GET).unwrap();
    let limited = read_response(&mut stream, false);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        limited.header("connection"),
        None,
        "the connection stays open"
    );
    // B has its own bucket.
    let mut other = server.connect_from(B);
    assert_eq!(ask(&mut other).status, 200);
    // A token comes back every 50 ms.
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(
        ask(&mut stream).status,
        200,
        "the same connection, served again"
    );
}

fn a_denied_client_is_closed_before_anything_is_read(model: Model) {
    let server = Server::start_model(model, &["--deny", "127.0.0.2/32"]);
    let mut denied = server.connect_from(A);
    // Nothing is sent: the close comes at accept, not after a request (or
    // the header timeout).
    assert!(closed_unanswered(&mut denied));
    let mut other = server.connect_from(B);
    assert_eq!(ask(&mut other).status, 200);
    assert_eq!(server.get("/echo/x").status, 200, "127.0.0.1 too");
}

fn an_allow_list_keeps_out_everyone_else(model: Model) {
    let server = Server::start_model(model, &["--allow", "127.0.0.3", "--allow", "127.0.0.1"]);
    assert!(closed_unanswered(&mut server.connect_from(A)));
    assert_eq!(ask(&mut server.connect_from(B)).status, 200);
}

/// Whether the server closed `stream` without a byte of an answer, soon.
fn closed_unanswered(stream: &mut Client) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("answered: {:?}", String::from_utf8_lossy(&buf[..n])),
        // A reset, or over TLS a handshake the server never finished.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => false,
        Err(_) => true,
    }
}

#[test]
fn refusals_are_counted_on_the_status_page_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = Server::start(&[
        "--status",
        "/.status",
        "--max-connections-per-ip",
        "1",
        "--rate-per-ip",
        "0.001",
        "--rate-burst",
        "2",
        "--deny",
        "127.0.0.4",
        "--access-log",
        log.to_str().unwrap(),
    ]);
    let mut first = server.connect_from(A);
    assert_eq!(ask(&mut first).status, 200);
    assert_eq!(ask(&mut first).status, 200);
    assert_eq!(ask(&mut first).status, 429);
    let mut second = server.connect_from(A);
    assert_eq!(ask(&mut second).status, 503);
    assert!(closed_unanswered(
        &mut server.connect_from(Ipv4Addr::new(127, 0, 0, 4))
    ));
    // The page is asked for from an address of its own: other tests' clients
    // may knock on 127.0.0.1 at this port (a port is reused once its server
    // has gone), and would take from 127.0.0.1's tokens.
    let page = |path: &str| {
        let mut stream = server.connect_from(Ipv4Addr::new(127, 0, 0, 6));
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n");
        stream.write_all(raw.as_bytes()).unwrap();
        read_response(&mut stream, false).text()
    };
    let json = page("/.status");
    assert!(
        json.contains("\"refused\":{\"denied\":1,\"too_many_connections\":1,\"rate_limited\":1}"),
        "{json}"
    );
    let metrics = page("/.status/metrics");
    assert!(
        metrics.contains("oneloop_refused_total{reason=\"rate_limited\"} 1"),
        "{metrics}"
    );
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        common::eventually(Duration::from_secs(5), || logged().contains("\" 503 ")),
        "{}",
        logged()
    );
    let lines = logged();
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("127.0.0.2 ") && l.contains("\"-\" 503 ")),
        "the refused connection, with no request line:\n{lines}"
    );
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("127.0.0.2 ") && l.contains("\"GET /echo/hi HTTP/1.1\" 429 ")),
        "{lines}"
    );
}

#[test]
fn bad_limits_are_refused_at_start() {
    for (args, says) in [
        (&["--rate-per-ip", "fast"][..], "not a rate"),
        (&["--rate-per-ip=-1"][..], "not a rate"),
        (
            &["--rate-per-ip", "5", "--rate-burst", "0"][..],
            "--rate-burst",
        ),
        (&["--deny", "10.0.0.0/33"][..], "not an address or a range"),
        (&["--allow", "nowhere"][..], "not an address or a range"),
        (
            &["--max-connections-per-ip=-3"][..],
            "--max-connections-per-ip",
        ),
    ] {
        let out = common::oneloop().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
