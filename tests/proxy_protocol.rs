//! Behind a load balancer: the PROXY protocol from trusted peers only, the
//! client it names seen by the access log, the password gate and the status
//! page, and HAProxy itself in front of two oneloop processes.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Model, Server, eventually, read_response};

every_model!(
    the_client_named_is_the_one_logged,
    the_limits_hold_the_client_named_not_the_balancer,
);

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A version 2 header naming `client` (IPv4) as connecting to 192.0.2.1:443.
fn v2_header(client: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(client) = client else {
        panic!("an IPv4 client");
    };
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&client.ip().octets());
    header.extend_from_slice(&[192, 0, 2, 1]);
    header.extend_from_slice(&client.port().to_be_bytes());
    header.extend_from_slice(&443u16.to_be_bytes());
    header
}

/// A connection that first says, as a balancer would, who the client is.
fn connect_as(server: &Server, header: &[u8]) -> Client {
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    tcp.write_all(header).unwrap();
    Client::new(tcp, server.tls)
}

fn get_through(server: &Server, header: &[u8], request: &str) -> common::Response {
    let mut client = connect_as(server, header);
    client.write_all(request.as_bytes()).unwrap();
    read_response(&mut client, false)
}

/// Every connection comes from the balancer (127.0.0.1); the limits count
/// the clients its headers name. The default cap, for the network, holds a
/// client on the Internet and leaves one on loopback alone.
fn the_limits_hold_the_client_named_not_the_balancer(model: Model) {
    let server = Server::start_model(
        model,
        &[
            "--proxy-protocol",
            "--trusted-proxy",
            "127.0.0.1",
            "--deny",
            "203.0.113.66",
        ],
    );
    let named = |client: &str| format!("PROXY TCP4 {client} 192.0.2.1 51234 443\r\n").into_bytes();
    let request = "GET /echo/hi HTTP/1.1\r\nHost: x\r\n\r\n";
    // Denied: closed once the header names it, with no answer.
    let mut denied = connect_as(&server, &named("203.0.113.66"));
    denied
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = denied.write_all(request.as_bytes());
    let mut buf = [0u8; 64];
    assert!(
        !matches!(denied.read(&mut buf), Ok(n) if n > 0),
        "a denied client gets no answer"
    );
    assert_eq!(
        get_through(&server, &named("198.51.100.8"), request).status,
        200
    );
}

/// The default cap (64 connections) holds a client of the network, named by
/// the balancer; one on loopback is not held to it. (On the loop: a pool of
/// 16 threads would queue most of the 64.)
#[test]
fn the_default_cap_holds_a_client_of_the_network_only() {
    let server = Server::start(&["--proxy-protocol", "--trusted-proxy", "127.0.0.1"]);
    let named = |client: &str| format!("PROXY TCP4 {client} 192.0.2.1 51234 443\r\n").into_bytes();
    let request = "GET /echo/hi HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held: Vec<Client> = (0..64)
        .map(|_| {
            let mut c = connect_as(&server, &named("198.51.100.7"));
            c.write_all(request.as_bytes()).unwrap();
            assert_eq!(read_response(&mut c, false).status, 200);
            c
        })
        .collect();
    let over = get_through(&server, &named("198.51.100.7"), request);
    assert_eq!(over.status, 503, "{}", over.raw_head);
    assert_eq!(over.header("retry-after"), Some("1"));
    // Another client, and the balancer itself, are served meanwhile.
    assert_eq!(
        get_through(&server, &named("198.51.100.8"), request).status,
        200
    );
    let local = [V2_SIGNATURE.as_slice(), &[0x20, 0x00, 0, 0]].concat();
    assert_eq!(get_through(&server, &local, request).status, 200);
    // A loopback client is not held to the default cap.
    let loopback: Vec<Client> = (0..70)
        .map(|_| {
            let mut c = connect_as(&server, &named("127.0.0.9"));
            c.write_all(request.as_bytes()).unwrap();
            assert_eq!(read_response(&mut c, false).status, 200);
            c
        })
        .collect();
    assert_eq!(loopback.len(), 70);
    held.clear();
}

fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn the_client_named_is_the_one_logged(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = Server::start_model(
        model,
        &[
            "--proxy-protocol",
            "--trusted-proxy",
            "127.0.0.0/8",
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
    let request = "GET /echo/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(get_through(&server, v1, request).body, b"v1");
    let v2 = v2_header("198.51.100.9:4000".parse().unwrap());
    let request = "GET /echo/v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(get_through(&server, &v2, request).body, b"v2");
    // A health check: the balancer speaking for itself (LOCAL).
    let local = [V2_SIGNATURE.as_slice(), &[0x20, 0x00, 0, 0]].concat();
    let request = "GET /echo/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(get_through(&server, &local, request).body, b"check");
    assert!(eventually(Duration::from_secs(5), || read_log(&log)
        .lines()
        .count()
        == 3));
    let text = read_log(&log);
    let client_of = |path: &str| {
        let line = text.lines().find(|l| l.contains(path)).unwrap_or_default();
        line.split(' ').next().unwrap_or_default().to_owned()
    };
    assert_eq!(client_of("/echo/v1"), "203.0.113.7", "{text}");
    assert_eq!(client_of("/echo/v2"), "198.51.100.9", "{text}");
    assert_eq!(client_of("/echo/check"), "127.0.0.1", "{text}");
}

/// Whether the server closed `stream` without answering.
fn closed_without_answer(stream: &mut impl Read) -> bool {
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => common::tls::is_a_close(&e),
    }
}

#[test]
fn untrusted_peers_and_missing_headers_are_closed() {
    let untrusting = Server::start(&["--proxy-protocol", "--trusted-proxy", "10.0.0.0/8"]);
    let mut stream = TcpStream::connect(untrusting.addr).unwrap();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let _ = stream.write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(
        closed_without_answer(&mut stream),
        "127.0.0.1 is not trusted"
    );

    let server = Server::start(&["--proxy-protocol", "--trusted-proxy", "127.0.0.1"]);
    for opening in [
        &b"GET /echo/x HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 443\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP9 nonsense\r\n",
    ] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        stream.write_all(opening).unwrap();
        assert!(
            closed_without_answer(&mut stream),
            "{:?}",
            String::from_utf8_lossy(opening)
        );
    }
    // The server is none the worse.
    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n";
    let request = "GET /echo/fine HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(get_through(&server, v1, request).body, b"fine");
}

#[test]
fn a_header_in_pieces_is_waited_for() {
    let server = Server::start(&["--proxy-protocol", "--trusted-proxy", "127.0.0.1"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    for piece in [
        &b"PROXY TCP4 203.0"[..],
        b".113.7 192.0.2.1 1 2\r",
        b"\nGET /echo/slow",
    ] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    stream.write_all(b" HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut stream, false).body, b"slow");
}

#[test]
fn the_status_page_and_the_password_gate_see_the_named_client() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let output = {
        let mut child = common::oneloop()
            .args(["--hash-password", "alice"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        child.wait_with_output().unwrap()
    };
    std::fs::write(&users, output.stdout).unwrap();
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "--directory",
        store.path().to_str().unwrap(),
        "--proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
        "--status",
        "/.status",
        "--auth-file",
        users.to_str().unwrap(),
        "--auth-uploads-only",
    ]);
    let status = "GET /.status HTTP/1.1\r\nHost: x\r\n\r\n";
    let far = b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n";
    let near = b"PROXY TCP4 127.0.0.1 192.0.2.1 1 2\r\n";
    assert_eq!(
        get_through(&server, far, status).status,
        403,
        "not loopback, whatever the socket"
    );
    assert_eq!(get_through(&server, near, status).status, 200);
    // "alice:guess" in Basic form.
    let guess = "POST /files/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6Z3Vlc3M=\r\n\
                 Content-Length: 0\r\n\r\n";
    assert_eq!(get_through(&server, far, guess).status, 401);
    assert!(eventually(Duration::from_secs(5), || server
        .log()
        .contains("wrong password for user \"alice\" from 203.0.113.7")));
}

#[test]
fn proxy_protocol_needs_trusted_peers() {
    let output = common::oneloop()
        .args(["--port", "0", "--proxy-protocol"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs --trusted-proxy"));
}

/// HAProxy on `front`, running contrib/haproxy/haproxy.cfg as it is.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn haproxy_spreads_clients_over_two_oneloops_and_names_them() {
    // Debian puts it in /usr/sbin, which a user's PATH may lack.
    let haproxy = ["haproxy", "/usr/sbin/haproxy"]
        .into_iter()
        .find(|program| Command::new(program).arg("-v").output().is_ok());
    let Some(haproxy) = haproxy else {
        common::skip("haproxy is not installed (Debian package haproxy)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = [dir.path().join("one.log"), dir.path().join("two.log")];
    let start = |log: &std::path::Path| {
        Server::start(&[
            "--proxy-protocol",
            "--trusted-proxy",
            "127.0.0.1",
            "--access-log",
            log.to_str().unwrap(),
        ])
    };
    let (one, two) = (start(&logs[0]), start(&logs[1]));
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/haproxy/haproxy.cfg");
    let _haproxy = Haproxy(
        Command::new(haproxy)
            .args(["-f", config, "-db"])
            .env("ONELOOP_FRONT", front.to_string())
            .env("ONELOOP_ONE", one.addr.to_string())
            .env("ONELOOP_TWO", two.addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Clients from 127.0.0.3, which only HAProxy can vouch for: oneloop
    // trusts 127.0.0.1 alone.
    let request = |n: usize| -> Option<Vec<u8>> {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 3], 0)).into())
            .ok()?;
        socket.connect(&front.into()).ok()?;
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).ok()?;
        let text = format!("GET /echo/{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(text.as_bytes()).ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        Some(answer)
    };
    let deadline = Instant::now() + common::IO_TIMEOUT;
    while request(0).is_none_or(|a| !a.ends_with(b"\r\n\r\n0")) {
        assert!(Instant::now() < deadline, "HAProxy did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in 1..=6 {
        let answer = request(n).expect("an answer through HAProxy");
        assert!(
            answer.ends_with(n.to_string().as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    let served = |log: &std::path::Path| {
        read_log(log)
            .lines()
            .filter(|line| line.contains("\"GET /echo/"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(eventually(Duration::from_secs(5), || served(&logs[0])
        .len()
        + served(&logs[1]).len()
        >= 7));
    let (first, second) = (served(&logs[0]), served(&logs[1]));
    assert!(
        !first.is_empty() && !second.is_empty(),
        "both serve: {first:?} {second:?}"
    );
    for line in first.iter().chain(&second) {
        assert!(
            line.starts_with("127.0.0.3 - - ["),
            "the client, not HAProxy: {line}"
        );
    }
    // A client going around HAProxy is not believed.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 3], 0)).into())
        .unwrap();
    socket.connect(&one.addr.into()).unwrap();
    let mut around: TcpStream = socket.into();
    around.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let _ = around.write_all(b"PROXY TCP4 10.9.9.9 192.0.2.1 1 2\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(closed_without_answer(&mut around));
}
