//! The HTTP-server challenge, byte for byte, against the real binary.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Model, Server, closes_within, read_all, read_response, send_and_half_close};

every_model!(
    root_is_an_empty_200,
    echo_is_exact,
    every_response_has_an_imf_fixdate,
    user_agent_is_echoed,
    unknown_paths_are_404,
    methods_not_supported_are_405_and_unknown_ones_501,
    malformed_requests_get_400_and_a_close,
    files_are_served_exactly,
    post_writes_the_file_then_answers_201,
    post_bodies_split_across_writes_and_arriving_late,
    post_bodies_larger_than_a_mebibyte,
    names_that_escape_the_folder_are_refused_and_nothing_is_written,
    concurrent_connections_are_answered_in_any_order,
    persistent_connections_serve_many_requests,
    connection_close_closes_promptly,
    http10_keep_alive_rules,
    sixteen_pipelined_requests_in_one_write,
    a_request_followed_by_a_half_close_is_answered,
    gzip_is_negotiated,
    no_builtins_keeps_the_store_and_drops_the_demo_endpoints,
);

fn store(model: Model) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_store(model, dir.path(), &[]);
    (dir, server)
}

fn root_is_an_empty_200(model: Model) {
    let server = Server::start_model(model, &[]);
    let r = server.get("/");
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
}

fn echo_is_exact(model: Model) {
    let server = Server::start_model(model, &[]);
    let r = server.get("/echo/abc");
    assert!(
        r.raw_head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        r.raw_head
    );
    assert!(r.raw_head.contains("\r\nContent-Type: text/plain\r\n"));
    assert!(r.raw_head.contains("\r\nContent-Length: 3\r\n"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, b"abc");
    assert_eq!(server.get("/echo/").body, b"");
    assert_eq!(server.get("/echo/a/b?q=1").body, b"a/b");
    assert_eq!(server.get("/echo/hello%2C%20loop").body, b"hello, loop");
}

fn every_response_has_an_imf_fixdate(model: Model) {
    let server = Server::start_model(model, &[]);
    for r in [
        server.get("/"),
        server.get("/echo/x"),
        server.get("/missing"),
    ] {
        let date = r.header("date").expect("a Date header");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    }
}

fn user_agent_is_echoed(model: Model) {
    let server = Server::start_model(model, &[]);
    let r =
        server.request("GET /user-agent HTTP/1.1\r\nHost: x\r\nuser-agent: foobar/1.2.3\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("12"));
    assert_eq!(r.body, b"foobar/1.2.3");
}

fn unknown_paths_are_404(model: Model) {
    let server = Server::start_model(model, &[]);
    let r = server.get("/apple");
    assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
    assert!(r.raw_head.starts_with("HTTP/1.1 404 Not Found\r\n"));
}

fn methods_not_supported_are_405_and_unknown_ones_501(model: Model) {
    let server = Server::start_model(model, &[]);
    let r = server.request("DELETE /echo/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (405, "Method Not Allowed"));
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = server.request("BREW /echo/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (501, "Not Implemented"));
}

fn malformed_requests_get_400_and_a_close(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    stream.write_all(b"GET /\r\n\r\n").unwrap();
    let r = read_response(&mut stream, false);
    assert_eq!((r.status, r.reason.as_str()), (400, "Bad Request"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut stream, Duration::from_secs(5)));
}

fn files_are_served_exactly(model: Model) {
    let (dir, server) = store(model);
    let content: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    std::fs::write(dir.path().join("blob.bin"), &content).unwrap();
    let r = server.get("/files/blob.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("content-length"), Some("5000"));
    assert_eq!(r.body, content);

    let head = server.request("HEAD /files/blob.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.header("content-length"), Some("5000"));
    assert!(head.body.is_empty());

    assert_eq!(server.get("/files/non_existent_file").status, 404);
}

fn post_writes_the_file_then_answers_201(model: Model) {
    let (dir, server) = store(model);
    let r = server.request(
        "POST /files/new.txt HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n12345",
    );
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert!(r.raw_head.starts_with("HTTP/1.1 201 Created\r\n"));
    assert_eq!(std::fs::read(dir.path().join("new.txt")).unwrap(), b"12345");
    assert_eq!(server.get("/files/new.txt").body, b"12345");
}

fn no_builtins_keeps_the_store_and_drops_the_demo_endpoints(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_store(model, dir.path(), &["--no-builtins"]);
    let r = server.request("POST /files/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        r.status, 201,
        "--directory means uploads, --no-builtins or not"
    );
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"hello");
    let r = server.get("/files/x");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    for demo in ["/echo/abc", "/user-agent", "/"] {
        assert_eq!(server.get(demo).status, 404, "{demo} is a demo endpoint");
    }
}

fn post_bodies_split_across_writes_and_arriving_late(model: Model) {
    let (dir, server) = store(model);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /files/late HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for piece in [&b"01"[..], b"234", b"56789"] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(read_response(&mut stream, false).status, 201);
    assert_eq!(
        std::fs::read(dir.path().join("late")).unwrap(),
        b"0123456789"
    );
}

fn post_bodies_larger_than_a_mebibyte(model: Model) {
    let (dir, server) = store(model);
    let content: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|i: u32| (i * 7 % 251) as u8)
        .collect();
    let mut stream = server.connect();
    let head = format!(
        "POST /files/big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        content.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&content).unwrap();
    assert_eq!(read_response(&mut stream, false).status, 201);
    assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), content);
    // And back, on the same connection.
    stream
        .write_all(b"GET /files/big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).body, content);
}

fn names_that_escape_the_folder_are_refused_and_nothing_is_written(model: Model) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(parent.path().join("secret"), b"top secret").unwrap();
    let server = Server::start_model(model, &["--directory", dir.to_str().unwrap()]);
    for path in [
        "/files/../secret",
        "/files/..%2fsecret",
        "/files/%2e%2e%2fsecret",
        "/files/%2E%2E%2Fsecret",
        "/files/..%5csecret",
        "/files/..",
        "/files/%2e%2e",
        "/files/a%00b",
        "/files/.hidden",
        "/files/sub/file",
    ] {
        let get = server.get(path);
        assert!(
            matches!(get.status, 400 | 403),
            "GET {path}: {}",
            get.status
        );
        assert!(!get.text().contains("top secret"));
        let post = server.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\npwnd"
        ));
        assert!(
            matches!(post.status, 400 | 403),
            "POST {path}: {}",
            post.status
        );
    }
    assert_eq!(
        std::fs::read(parent.path().join("secret")).unwrap(),
        b"top secret"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 2);
}

fn concurrent_connections_are_answered_in_any_order(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut slow = server.connect();
    slow.write_all(b"GET /echo/slow HTTP/1.1\r\nHo").unwrap();
    let mut others: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for (i, stream) in others.iter_mut().enumerate() {
        stream
            .write_all(format!("GET /echo/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
    }
    // The complete requests are answered while the first is still incomplete.
    for (i, stream) in others.iter_mut().enumerate().rev() {
        assert_eq!(read_response(stream, false).body, i.to_string().as_bytes());
    }
    slow.write_all(b"st: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut slow, false).body, b"slow");
}

fn persistent_connections_serve_many_requests(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    for i in 0..20 {
        stream
            .write_all(format!("GET /echo/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut stream, false);
        assert_eq!(r.body, i.to_string().as_bytes());
        assert_eq!(
            r.header("connection"),
            None,
            "keep-alive is the HTTP/1.1 default"
        );
    }
}

fn connection_close_closes_promptly(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /echo/bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut stream, false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut stream, Duration::from_millis(500)));
}

fn http10_keep_alive_rules(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    stream.write_all(b"GET /echo/a HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut stream, false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut stream, Duration::from_millis(500)));

    let mut stream = server.connect();
    stream
        .write_all(b"GET /echo/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut stream, false).header("connection"),
        Some("keep-alive")
    );
    stream
        .write_all(b"GET /echo/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).body, b"b");
}

fn sixteen_pipelined_requests_in_one_write(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    let burst: String = (0..16)
        .map(|i| format!("GET /echo/{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    stream.write_all(burst.as_bytes()).unwrap();
    for i in 0..16 {
        assert_eq!(
            read_response(&mut stream, false).body,
            i.to_string().as_bytes()
        );
    }
}

fn a_request_followed_by_a_half_close_is_answered(model: Model) {
    let server = Server::start_model(model, &[]);
    let mut stream = server.connect();
    send_and_half_close(
        &mut stream,
        b"GET /echo/one HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/two HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    // At once, not when a timeout gives up on the connection: the FIN came
    // with the requests, and brings no event of its own.
    let started = std::time::Instant::now();
    let all = String::from_utf8(read_all(&mut stream)).unwrap();
    assert!(
        all.contains("\r\n\r\none") && all.ends_with("\r\n\r\ntwo"),
        "{all}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a valid gzip body");
    text
}

fn gzip_is_negotiated(model: Model) {
    let server = Server::start_model(model, &[]);
    let get = |accept: &str| {
        server.request(&format!(
            "GET /echo/banana HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {accept}\r\n\r\n"
        ))
    };
    for accept in ["gzip", "invalid-1, gzip, invalid-2", "GZIP;q=0.5"] {
        let r = get(accept);
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        assert_eq!(gunzip(&r.body), "banana");
    }
    for accept in ["invalid-encoding", "gzip;q=0", "invalid-1, invalid-2"] {
        let r = get(accept);
        assert_eq!(r.header("content-encoding"), None, "{accept}");
        assert_eq!(r.body, b"banana");
    }
}

#[test]
fn the_log_says_where_it_listens_with_the_real_port() {
    let server = Server::start(&[]);
    assert_ne!(server.addr.port(), 0);
    assert!(
        server
            .log()
            .contains(&format!("listening on http://{}", server.addr))
    );
}

#[test]
fn trace_shows_the_loop_at_work() {
    let server = Server::start_with_env(&[], &[("RUST_LOG", "oneloop=trace")]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = read_all(&mut stream);
    assert!(common::eventually(Duration::from_secs(5), || server
        .log()
        .contains("closed")));
    let log = server.log();
    for needle in [
        "#0: accepted",
        "#0: event readable",
        "#0: read ",
        "#0: Idle -> ReadingHead",
        "#0: ReadingHead -> AwaitingAnswer",
        "#0: AwaitingAnswer -> Idle",
        "#0: AwaitingAnswer -> Closing",
        "#0: wrote ",
        "#0: Closing -> Closed",
        "#0: closed",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in:\n{log}");
    }
}

#[test]
fn the_default_log_is_quiet() {
    let server = Server::start(&[]);
    server.get("/echo/a");
    server.get("/missing");
    let log = server.log();
    assert_eq!(log.lines().count(), 1, "{log}");
}
