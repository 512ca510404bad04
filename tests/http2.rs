//! HTTP/2 from outside: real clients (curl with --http2-prior-knowledge on
//! cleartext and ALPN over TLS; nghttp with many streams on one
//! connection) fetch every kind of resource on every model, byte for byte;
//! and raw frames, written here, send the abuse RFC 9113 and the CVEs name
//! and check the bound, and that another connection is still served.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{IO_TIMEOUT, Model, Server, have_curl};

every_model!(
    curl_fetches_every_kind_of_resource_over_http2,
    nghttp_multiplexes_streams_on_one_connection,
    http1_and_http2_give_the_same_answers,
);

/// A site of a text page, a 3 MiB file and a folder, with a /files/ store.
fn site() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("page.html"), "<p>".repeat(2000)).unwrap();
    std::fs::write(root.join("sub/index.html"), "in sub").unwrap();
    (dir, big)
}

fn start(model: Model, dir: &Path, extra: &[&str]) -> Server {
    let root = dir.join("root");
    let store = dir.join("store");
    let mut args = vec![
        "--directory",
        store.to_str().unwrap(),
        root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start_model(model, &args)
}

/// curl speaking HTTP/2 to `server`: by ALPN over TLS, by prior knowledge
/// on cleartext. Fails the test if curl does.
fn curl2(server: &Server, args: &[&str]) -> Vec<u8> {
    let version = if server.tls {
        "--http2"
    } else {
        "--http2-prior-knowledge"
    };
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", version])
        .args(server.curl_trust())
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn curl_fetches_every_kind_of_resource_over_http2(model: Model) {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let (dir, big) = site();
    let server = start(model, dir.path(), &[]);
    let base = server.base_url();
    let url = |path: &str| format!("{base}{path}");

    // The protocol and status, as curl saw them.
    let seen = curl2(
        &server,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            &url("/page.html"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&seen), "2 200");

    // A file of 3 MiB: many DATA frames, paced by the windows.
    assert!(
        curl2(&server, &[&url("/big.bin")]) == big,
        "big.bin differs"
    );
    // A range of it, and gzip of a text page.
    let range = curl2(&server, &["-H", "Range: bytes=1000-1999", &url("/big.bin")]);
    assert_eq!(range, big[1000..2000]);
    let gzipped = curl2(&server, &["--compressed", &url("/page.html")]);
    assert_eq!(gzipped, "<p>".repeat(2000).into_bytes());
    // A conditional request.
    let head = curl2(&server, &["-sI", &url("/page.html")]);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an etag")
        .trim()
        .to_owned();
    let status = curl2(
        &server,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("If-None-Match: {etag}"),
            &url("/page.html"),
        ],
    );
    assert_eq!(status, b"304");
    // A folder's index, a miss, the challenge's routes.
    assert_eq!(curl2(&server, &[&url("/sub/")]), b"in sub");
    let missing = curl2(
        &server,
        &["-o", "/dev/null", "-w", "%{http_code}", &url("/nope")],
    );
    assert_eq!(missing, b"404");
    assert_eq!(curl2(&server, &[&url("/echo/abc")]), b"abc");
    let agent = curl2(&server, &["-A", "probe/2", &url("/user-agent")]);
    assert_eq!(agent, b"probe/2");
    // An upload in DATA frames, then read back.
    let upload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let source = dir.path().join("upload.bin");
    std::fs::write(&source, &upload).unwrap();
    let created = curl2(
        &server,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
            &format!("@{}", source.display()),
            &url("/files/up.bin"),
        ],
    );
    assert_eq!(created, b"201");
    assert!(
        curl2(&server, &[&url("/files/up.bin")]) == upload,
        "the upload differs"
    );
}

/// What curl saw of one exchange: the status, the fields less those that
/// are the connection's (and the date, which moves), and the body.
fn exchange(server: &Server, version: &str, args: &[&str]) -> (String, Vec<String>, Vec<u8>) {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            version,
            "-D",
            "-",
        ])
        .args(server.curl_trust())
        .args(args)
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {args:?}");
    let text = output.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&text[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    let mut fields: Vec<String> = lines
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| {
            !l.starts_with("date:")
                && !l.starts_with("connection:")
                && !l.starts_with("keep-alive:")
        })
        .collect();
    fields.sort();
    let mut body = text[split + 4..].to_vec();
    // A multipart answer's boundary is new for every response.
    let boundary = fields
        .iter()
        .find_map(|f| f.split_once("boundary=").map(|(_, b)| b.to_owned()));
    if let Some(boundary) = boundary {
        for field in &mut fields {
            *field = field.replace(&boundary, "BOUNDARY");
        }
        let body_text = String::from_utf8_lossy(&body).replace(&boundary, "BOUNDARY");
        body = body_text.into_bytes();
    }
    (status, fields, body)
}

/// The same request over HTTP/1.1 and over HTTP/2 gets the same status,
/// fields and body: every kind of answer the application gives.
fn http1_and_http2_give_the_same_answers(model: Model) {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let (dir, _big) = site();
    let server = start(model, dir.path(), &["--listing"]);
    let h2 = if server.tls {
        "--http2"
    } else {
        "--http2-prior-knowledge"
    };
    let base = server.base_url();
    let cases: Vec<Vec<String>> = vec![
        vec![format!("{base}/page.html")],
        vec!["--compressed".into(), format!("{base}/page.html")],
        vec![
            "-H".into(),
            "Range: bytes=5-15,20-30".into(),
            format!("{base}/big.bin"),
        ],
        vec![
            "-H".into(),
            "Range: bytes=99999999-".into(),
            format!("{base}/big.bin"),
        ],
        vec![
            "-H".into(),
            "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT".into(),
            format!("{base}/page.html"),
        ],
        vec![format!("{base}/sub")],
        vec![format!("{base}/sub/")],
        vec![format!("{base}/")],
        vec![format!("{base}/nope")],
        vec![format!("{base}/../etc/passwd"), "--path-as-is".into()],
        vec![format!("{base}/echo/same")],
        vec!["-A".into(), "agent/1".into(), format!("{base}/user-agent")],
        vec!["-X".into(), "DELETE".into(), format!("{base}/page.html")],
        vec!["-X".into(), "BREW".into(), format!("{base}/page.html")],
        vec![format!("{base}/files/none")],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let one = exchange(&server, "--http1.1", &args);
        let two = exchange(&server, h2, &args);
        assert_eq!(one, two, "{args:?}");
    }
}

fn have_nghttp() -> bool {
    Command::new("nghttp")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn nghttp_multiplexes_streams_on_one_connection(model: Model) {
    if !have_nghttp() {
        common::skip("nghttp is not installed (Debian package nghttp2-client)");
        return;
    }
    let (dir, _big) = site();
    let server = start(model, dir.path(), &[]);
    let base = server.base_url();
    // Thirty streams at once, one of them the big file: `-s` prints one
    // line per stream, with its status and size.
    let mut urls: Vec<String> = (0..29).map(|i| format!("{base}/echo/n{i}")).collect();
    urls.push(format!("{base}/big.bin"));
    let output = Command::new("nghttp")
        .args(["-n", "-s", "-t", "20", "-m", "1"])
        .args(&urls)
        .output()
        .expect("run nghttp");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let served = text.lines().filter(|l| l.contains(" 200 ")).count();
    assert_eq!(served, 30, "{text}");
    assert!(text.contains(" 3M /big.bin"), "{text}");
}

// ----- raw frames (cleartext, prior knowledge) ---------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header block with no Huffman and no table: literal fields.
fn literal_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A GET of `path`.
fn block(path: &str) -> Vec<u8> {
    literal_block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", path),
    ])
}

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// A connection past the preface and its SETTINGS.
fn open(server: &Server) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(PREFACE).unwrap();
    tcp.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    tcp
}

/// Frames read until `stop` says so, or the connection ends: (type,
/// flags, stream, payload).
fn read_frames(
    tcp: &mut TcpStream,
    mut stop: impl FnMut(u8, u8, u32) -> bool,
) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut head = [0u8; 9];
    while tcp.read_exact(&mut head).is_ok() {
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        if tcp.read_exact(&mut payload).is_err() {
            break;
        }
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        let done = stop(head[3], head[4], stream);
        frames.push((head[3], head[4], stream, payload));
        if done {
            break;
        }
    }
    frames
}

fn goaway_code(frames: &[(u8, u8, u32, Vec<u8>)]) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.0 == GOAWAY)
        .map(|f| u32::from_be_bytes([f.3[4], f.3[5], f.3[6], f.3[7]]))
}

/// A fresh connection is still served: one GET, its DATA read back.
fn still_serves(server: &Server) {
    let mut tcp = open(server);
    tcp.write_all(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &block("/echo/alive"),
    ))
    .unwrap();
    let frames = read_frames(&mut tcp, |kind, flags, stream| {
        kind == DATA && stream == 1 && flags & END_STREAM != 0
    });
    let data: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == DATA && f.2 == 1)
        .flat_map(|f| f.3.clone())
        .collect();
    assert_eq!(data, b"alive");
}

const ENHANCE_YOUR_CALM: u32 = 0xb;

#[test]
fn raw_frames_get_a_response() {
    let server = Server::start(&[]);
    still_serves(&server);
}

#[test]
fn a_ping_flood_ends_in_goaway_and_others_are_served() {
    let server = Server::start(&[]);
    let mut tcp = open(&server);
    let mut flood = Vec::new();
    for _ in 0..3000 {
        flood.extend(frame(PING, 0, 0, &[7; 8]));
    }
    // The server may stop reading before the flood is all sent.
    let _ = tcp.write_all(&flood);
    let frames = read_frames(&mut tcp, |kind, _, _| kind == GOAWAY);
    assert_eq!(goaway_code(&frames), Some(ENHANCE_YOUR_CALM));
    still_serves(&server);
}

/// A request the server holds its stream open for: an upload whose body
/// has not come.
fn upload_block(path: &str) -> Vec<u8> {
    literal_block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", path),
        ("content-length", "10"),
    ])
}

#[test]
fn rapid_reset_ends_in_goaway_and_others_are_served() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(&["--directory", store.path().to_str().unwrap()]);
    let mut tcp = open(&server);
    let mut attack = Vec::new();
    // Each stream opened, the server at work on it, and reset at once
    // (CVE-2023-44487). A stream already answered in full when its reset
    // comes cost no more than any request, and is not counted.
    for n in 0..1000u32 {
        let stream = 1 + 2 * n;
        attack.extend(frame(
            HEADERS,
            END_HEADERS,
            stream,
            &upload_block("/files/r"),
        ));
        attack.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let _ = tcp.write_all(&attack);
    let frames = read_frames(&mut tcp, |kind, _, _| kind == GOAWAY);
    assert_eq!(goaway_code(&frames), Some(ENHANCE_YOUR_CALM));
    still_serves(&server);
    // Nothing of the abandoned uploads is left behind.
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);
}

#[test]
fn a_continuation_flood_ends_in_goaway_and_others_are_served() {
    let server = Server::start(&[]);
    let mut tcp = open(&server);
    let mut flood = frame(HEADERS, 0, 1, &block("/echo/x"));
    for _ in 0..10_000 {
        flood.extend(frame(CONTINUATION, 0, 1, &[0x40, 1, b'x', 1, b'y']));
    }
    let _ = tcp.write_all(&flood);
    let frames = read_frames(&mut tcp, |kind, _, _| kind == GOAWAY);
    assert_eq!(goaway_code(&frames), Some(ENHANCE_YOUR_CALM));
    still_serves(&server);
}

#[test]
fn too_many_streams_are_refused_and_the_rest_answered() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(&["--directory", store.path().to_str().unwrap()]);
    let mut tcp = open(&server);
    // 101 uploads whose bodies never come: the 101st is one too many.
    let mut requests = Vec::new();
    for n in 0..101u32 {
        let path = format!("/files/u{n}");
        requests.extend(frame(HEADERS, END_HEADERS, 1 + 2 * n, &upload_block(&path)));
    }
    tcp.write_all(&requests).unwrap();
    let frames = read_frames(&mut tcp, |kind, _, stream| {
        kind == RST_STREAM && stream == 201
    });
    let refused = frames.iter().find(|f| f.0 == RST_STREAM && f.2 == 201);
    assert_eq!(
        refused.map(|f| f.3.clone()),
        Some(7u32.to_be_bytes().to_vec())
    );
    still_serves(&server);
}

#[test]
fn no_http2_turns_both_ways_in_off() {
    let server = Server::start(&["--no-http2"]);
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(PREFACE).unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");

    let tls_args = common::tls::server_args();
    let mut args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    args.push("--no-http2");
    let server = Server::start(&args);
    if have_curl() {
        let seen = curl2(
            &server,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}",
                &format!("{}/echo/x", server.base_url()),
            ],
        );
        assert_eq!(seen, b"1.1");
    }
}

#[test]
fn the_access_log_says_http_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = Server::start(&["--access-log", log.to_str().unwrap()]);
    still_serves(&server);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        common::eventually(Duration::from_secs(5), || logged()
            .contains("\"GET /echo/alive HTTP/2.0\" 200 5")),
        "{}",
        logged()
    );
}
