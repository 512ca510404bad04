//! Hostile bytes in every part of a request, sent to the real binary in every
//! model. After each one, the same process must still answer a normal request
//! on a fresh connection: no input may take the server down.
//!
//! Each input is sent and then the client's side is shut, so the server sees
//! the end at once and answers (or closes) without waiting for a timeout.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use common::{Model, Server, read_all};

every_model!(
    hostile_bytes_never_take_the_server_down,
    a_raw_utf8_target_is_served_as_its_percent_encoded_form,
);

/// Characters of every UTF-8 length but one (ASCII).
const WIDE: [&str; 3] = ["\u{e9}", "\u{20ac}", "\u{1f600}"];

/// A site whose names need UTF-8, and a store, with listings on.
fn site() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    let store = dir.path().join("store");
    std::fs::create_dir_all(root.join("d\u{e9}j\u{e0}")).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(root.join("r\u{e9}sum\u{e9}.txt"), "UTF-8 name\n").unwrap();
    std::fs::write(root.join("\u{20ac}uro.txt"), "three bytes\n").unwrap();
    std::fs::write(root.join("\u{1f600}.txt"), "four bytes\n").unwrap();
    std::fs::write(root.join("d\u{e9}j\u{e0}/vu.txt"), "nested\n").unwrap();
    let args = vec![
        root.to_str().unwrap().to_owned(),
        "--directory".to_owned(),
        store.to_str().unwrap().to_owned(),
        "--listing".to_owned(),
    ];
    (dir, args)
}

fn start(model: Model) -> (tempfile::TempDir, Server) {
    let (dir, args) = site();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (dir, Server::start_model(model, &args))
}

/// A request line around `target`.
fn get(target: &[u8]) -> Vec<u8> {
    [b"GET ", target, b" HTTP/1.1\r\nHost: example.org\r\n\r\n"].concat()
}

/// A request for a static file (where Range and the If-* family are read)
/// with one more field; a Host field replaces the usual one.
fn with_field(field: &[u8]) -> Vec<u8> {
    let host: &[u8] = if field.starts_with(b"Host:") {
        b""
    } else {
        b"Host: example.org\r\n"
    };
    [
        b"GET /r%C3%A9sum%C3%A9.txt HTTP/1.1\r\n",
        host,
        field,
        b"\r\n\r\n",
    ]
    .concat()
}

/// A chunked upload whose body is `body`.
fn chunked(body: &[u8]) -> Vec<u8> {
    [
        b"POST /files/upload.bin HTTP/1.1\r\nHost: example.org\r\nTransfer-Encoding: chunked\r\n\r\n",
        body,
    ]
    .concat()
}

/// Every hostile input, with the status it must get when one is certain.
fn hostile_inputs() -> Vec<(String, Vec<u8>, Option<u16>)> {
    let mut inputs: Vec<(String, Vec<u8>, Option<u16>)> = Vec::new();
    let mut add = |label: String, bytes: Vec<u8>, status: Option<u16>| {
        inputs.push((label, bytes, status));
    };

    // The method.
    for method in [
        &b"G\xc3\xa9T"[..],
        b"\xffGET",
        b"GET\x00",
        b"\x01",
        b"get",
        b"G(T",
        b"\xe2\x82\xac",
    ] {
        let bytes = [method, b" / HTTP/1.1\r\nHost: example.org\r\n\r\n"].concat();
        add(format!("method {method:?}"), bytes, None);
    }

    // The target: raw UTF-8 at every offset of its first 16 bytes, in both
    // the origin form and the absolute form (whose scheme is checked there).
    for wide in WIDE {
        for offset in 0..16 {
            let origin = format!("/{}{wide}tail", "x".repeat(offset));
            add(
                format!("origin target {origin:?}"),
                get(origin.as_bytes()),
                Some(404),
            );
            let absolute = format!("{}{wide}/", "h".repeat(offset));
            add(
                format!("target {absolute:?}"),
                get(absolute.as_bytes()),
                Some(400),
            );
            let mut scheme = b"https://example.org/".to_vec();
            scheme.truncate(offset.min(scheme.len()));
            let scheme = [scheme.as_slice(), wide.as_bytes(), b"/x"].concat();
            add(format!("broken scheme {scheme:?}"), get(&scheme), Some(400));
        }
    }
    // The target: invalid UTF-8, control bytes, lone and broken escapes.
    for (target, status) in [
        (&b"/\xff"[..], 400),
        (b"/\xc3", 400),
        (b"/\xc3(", 400),
        (b"/\xed\xa0\x80", 400),
        (b"/\xc0\xaf", 400),
        (b"/a\xe2\x82", 400),
        (b"/\x00", 400),
        (b"/\x01", 400),
        (b"/\x7f", 400),
        (b"/\x1b[2J", 400),
        (b"/a\tb", 400),
        (b"/%", 400),
        (b"/100%.txt", 400),
        (b"/%zz", 400),
        (b"/%e", 400),
        (b"/a%", 400),
        (b"/%%41", 400),
        (b"/%c3%a9%", 400),
        (b"/echo/%", 400),
        (b"/files/%", 400),
        (b"/%00", 403),
        (b"/%2e%2e/%2e%2e/etc/passwd", 403),
        (b"/..%2f..%2fetc%2fpasswd", 403),
        (b"/%ff%fe", 404),
        (b"/d%C3%A9j%C3%A0", 301),
        (b"/%C3%A9?%ff=%", 404),
    ] {
        add(format!("target {target:?}"), get(target), Some(status));
    }

    // Header names.
    for name in [
        &b"Ho\xc3\xa9st"[..],
        b"X-\x00",
        b"",
        b"\xff\xfe",
        b"A B",
        b"X-\xe2\x82\xac",
        b"(",
    ] {
        let field = [name, b": value"].concat();
        add(
            format!("header name {name:?}"),
            with_field(&field),
            Some(400),
        );
    }
    // Header values, on every field the server reads.
    for (field, status) in [
        (&b"Host: \xc3\xa9"[..], Some(400)),
        (b"Host: \xff", Some(400)),
        (b"Host: a\x00b", Some(400)),
        (b"Range: bytes=\xc3\xa9-", Some(200)),
        (b"Range: bytes=0-\xe2\x82\xac", Some(200)),
        (b"Range: \xff", Some(200)),
        (b"If-None-Match: \"\xc3\xa9", Some(200)),
        (b"If-None-Match: W/\xe2\x82", Some(200)),
        (b"If-Match: \xc3\xa9, \"", Some(412)),
        (b"If-Modified-Since: \xff\xfe", Some(200)),
        (b"If-Unmodified-Since: Sat, 21 Nov 2026 \xc3\xa9", Some(200)),
        (b"If-Range: \"\xc3\xa9\"", Some(200)),
        (b"Accept-Encoding: gzip;q=\xc3\xa9", Some(200)),
        (b"Accept-Encoding: \xc3\xa9;q=1, gzip;q", Some(200)),
        (b"Content-Length: \xd9\xa3", Some(400)),
        (b"Content-Length: 1\xc3\xa9", Some(400)),
        (b"Content-Length: 99999999999999999999999999", Some(413)),
        (b"Transfer-Encoding: chunked\xc3\xa9", Some(501)),
        (b"Transfer-Encoding: \xff", Some(501)),
        (b"Expect: 100-continu\xc3\xa9", Some(417)),
        (b"Connection: clos\xc3\xa9", Some(200)),
        (b"Connection: \xff\xfe, close", Some(200)),
        (b"User-Agent: \xff\xfe\xc3", Some(200)),
        (b"Referer: http://\xc3\xa9/\xff", Some(200)),
        (b"X-Long: \xc3\xa9\xc3\xa9\xc3\xa9\xc3", Some(200)),
    ] {
        add(format!("header value {field:?}"), with_field(field), status);
    }

    // Chunk sizes and extensions.
    for (body, status) in [
        (&b"\xc3\xa9\r\n"[..], Some(400)),
        (b"\xff\r\n", Some(400)),
        (b"5;\xc3\xa9=\xff\r\nhello\r\n0\r\n\r\n", Some(400)),
        (b"5;a=\"\xc3\xa9\xff\"\r\nhello\r\n0\r\n\r\n", Some(201)),
        (b"5;\x00\r\nhello\r\n", Some(400)),
        (b"5;a=\"\r\nhello\r\n0\r\n\r\n", Some(400)),
        (b"2;\r\nhi\r\n0\r\n\r\n", Some(400)),
        (b"fffffffffffffffffff\r\n", Some(413)),
        (b"0x5\r\nhello\r\n", Some(400)),
        (b"-1\r\n", Some(400)),
        (b"5 \xc3\xa9\r\nhello\r\n", Some(400)),
        (b"5\r\nhello\r\n0\r\nTrail\xc3\xa9r: x\r\n\r\n", Some(400)),
        (
            b"5\r\nhello\r\n0\r\nTrailer: \xc3\xa9\xff\r\n\r\n",
            Some(201),
        ),
        (b"5\r\nhel", None),
    ] {
        add(format!("chunked body {body:?}"), chunked(body), status);
    }
    inputs
}

/// Sends `bytes`, shuts the sending side, and reads until the server closes.
fn exchange(server: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server may refuse before reading everything; a reset is an answer.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    read_all(&mut stream)
}

/// The status of the first response in `reply`, if it starts with one.
fn first_status(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|&b| b == b'\r').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn assert_still_serving(server: &mut Server, after: &str) {
    assert!(server.is_running(), "the server died after {after}");
    let r = server.get("/echo/still-here");
    assert_eq!(r.status, 200, "after {after}");
    assert_eq!(r.body, b"still-here", "after {after}");
}

fn hostile_bytes_never_take_the_server_down(model: Model) {
    let (_dir, mut server) = start(model);
    let pid = server.pid();
    let inputs = hostile_inputs();
    for (label, bytes, expected) in &inputs {
        let reply = exchange(&server, bytes);
        let status = first_status(&reply);
        assert!(
            reply.is_empty() || status.is_some(),
            "{label}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&reply)
        );
        if let Some(expected) = expected {
            assert_eq!(
                status,
                Some(*expected),
                "{label}: {:?}",
                String::from_utf8_lossy(&reply)
            );
        }
        assert_still_serving(&mut server, label);
    }
    assert_eq!(server.pid(), pid);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    println!("{} hostile inputs, one process", inputs.len());
}

fn a_raw_utf8_target_is_served_as_its_percent_encoded_form(model: Model) {
    let (_dir, server) = start(model);
    for (raw, encoded) in [
        ("/r\u{e9}sum\u{e9}.txt", "/r%C3%A9sum%C3%A9.txt"),
        ("/\u{20ac}uro.txt", "/%E2%82%ACuro.txt"),
        ("/\u{1f600}.txt", "/%F0%9F%98%80.txt"),
        ("/d\u{e9}j\u{e0}/vu.txt", "/d%C3%A9j%C3%A0/vu.txt"),
    ] {
        let by_raw = server.get(raw);
        let by_encoded = server.get(encoded);
        assert_eq!(by_raw.status, 200, "{raw}");
        assert_eq!(by_raw.body, by_encoded.body, "{raw}");
        assert_eq!(by_raw.header("etag"), by_encoded.header("etag"), "{raw}");
        assert_eq!(
            by_raw.header("content-type"),
            by_encoded.header("content-type")
        );
    }
    // A directory named in UTF-8 redirects to its encoded form with a slash.
    let r = server.get("/d\u{e9}j\u{e0}");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/d%C3%A9j%C3%A0/"));
    // And its listing links the file by its encoded name.
    let listing = server.get("/d\u{e9}j\u{e0}/");
    assert_eq!(listing.status, 200);
    assert!(
        listing.text().contains("href=\"vu.txt\""),
        "{}",
        listing.text()
    );
    assert!(listing.text().contains("Index of /d\u{e9}j\u{e0}/"));
}
