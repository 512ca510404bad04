//! `--access-log-format combined|vhost|json`: the real binary, varied
//! requests (HEAD, a 404, a query, a user, a hostile User-Agent with quotes,
//! backslashes and bytes that are not UTF-8, a bare LF that breaks the head,
//! TLS), and every line written read back: the text formats by a parser of
//! the Combined Log Format, JSON by serde_json.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Model, Server, eventually, read_response};

every_model!(each_site_logs_to_its_own_file);

/// What the tests send, and how many lines each makes.
const REQUESTS: usize = 7;

/// `alice:secret`, as Basic credentials.
const ALICE: &str = "YWxpY2U6c2VjcmV0";

fn serve(format: &str, model: Model, log: &Path) -> (tempfile::TempDir, Server) {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("page.html"), "<p>hello</p>").unwrap();
    std::fs::write(site.path().join("index.html"), "home").unwrap();
    let mut args = model.args();
    args.extend(
        [
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-format",
            format,
            site.path().to_str().unwrap(),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    (site, server)
}

/// Sends the requests; the raw User-Agent bytes of the hostile one.
fn send_requests(server: &Server) {
    let get = |raw: &[u8], head: bool| {
        let mut client = server.connect();
        client.write_all(raw).unwrap();
        read_response(&mut client, head).status
    };
    assert_eq!(
        get(
            b"GET /page.html HTTP/1.1\r\nHost: Example.org:8080\r\n\r\n",
            false
        ),
        200
    );
    assert_eq!(
        get(
            b"HEAD /page.html HTTP/1.1\r\nHost: example.org\r\n\r\n",
            true
        ),
        200
    );
    assert_eq!(
        get(
            b"GET /missing?x=1&y=%22 HTTP/1.1\r\nHost: example.org\r\n\r\n",
            false
        ),
        404
    );
    let hostile = b"GET /page.html HTTP/1.1\r\nHost: h\r\n\
        User-Agent: evil \"quoted\" back\\slash \xff\xfe caf\xc3\xa9\r\n\
        Referer: http://r/\"x\r\n\r\n";
    assert_eq!(get(hostile, false), 200);
    let user = format!("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic {ALICE}\r\n\r\n");
    assert_eq!(get(user.as_bytes(), false), 200);
    // A bare LF ends nothing: the head is refused, and logged by what came.
    assert_eq!(
        get(
            b"GET /lf HTTP/1.1\r\nHost: h\r\nUser-Agent: a\nb\r\n\r\n",
            false
        ),
        400
    );
    assert_eq!(get(b"GET /page.html HTTP/1.0\r\n\r\n", false), 200);
}

fn lines_of(log: &Path) -> Vec<String> {
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_to_string(log)
            .is_ok_and(|text| text.lines().count() >= REQUESTS)),
        "{:?}",
        std::fs::read_to_string(log)
    );
    std::thread::sleep(Duration::from_millis(100));
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), REQUESTS, "one line per request:\n{text}");
    lines
}

/// A combined line's fields, its quoted ones unescaped back to bytes.
#[derive(Debug)]
struct Combined {
    client: String,
    user: String,
    time: String,
    request: Vec<u8>,
    status: u16,
    bytes: String,
    referer: Vec<u8>,
    user_agent: Vec<u8>,
    duration_us: u64,
}

/// Reads `\"`, `\\` and `\xHH` back.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'x') => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 4;
            }
            b'\\' => {
                out.push(bytes[i + 1]);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A strict parser of one line of the Combined Log Format and its trailing
/// duration: it fails on anything else.
fn parse_combined(line: &str) -> Combined {
    assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line:?}");
    let mut rest = line;
    let mut word = || {
        let (w, r) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = r;
        w.to_owned()
    };
    let client = word();
    assert_eq!(word(), "-");
    let user = word();
    let time = format!("{} {}", word(), word());
    let mut quoted = Vec::new();
    let mut tail = rest;
    for _ in 0..3 {
        tail = tail.trim_start();
        let after_status = if quoted.len() == 1 {
            // status and bytes sit between the request and the referer
            let (status, r) = tail.split_once(' ').unwrap();
            let (bytes, r) = r.split_once(' ').unwrap();
            quoted.push(format!("{status} {bytes}"));
            r
        } else {
            tail
        };
        let body = after_status.strip_prefix('"').expect("a quoted field");
        let mut end = 0;
        let b = body.as_bytes();
        while b[end] != b'"' {
            end += if b[end] == b'\\' { 2 } else { 1 };
        }
        quoted.push(body[..end].to_owned());
        tail = &body[end + 1..];
    }
    let (status, bytes) = quoted[1].split_once(' ').unwrap();
    let duration_us = tail.trim_start().parse().expect("a duration at the end");
    assert!(
        tail.starts_with(' ') && !tail[1..].contains(' '),
        "{line:?}"
    );
    Combined {
        client,
        user,
        time,
        request: unescape(&quoted[0]),
        status: status.parse().unwrap(),
        bytes: bytes.to_owned(),
        referer: unescape(&quoted[2]),
        user_agent: unescape(&quoted[3]),
        duration_us,
    }
}

fn check_text_lines(lines: &[Combined]) {
    for line in lines {
        assert_eq!(line.client, "127.0.0.1");
        assert!(
            line.time.starts_with('[') && line.time.ends_with(" +0000]"),
            "{line:?}"
        );
        assert!(line.duration_us < 10_000_000, "{line:?}");
    }
    let statuses: Vec<u16> = lines.iter().map(|l| l.status).collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 200, 200, 200, 200, 400, 404], "{lines:#?}");
    let head = lines
        .iter()
        .find(|l| l.request.starts_with(b"HEAD "))
        .unwrap();
    assert_eq!(head.bytes, "-", "HEAD sends no body");
    let hostile = lines
        .iter()
        .find(|l| l.user_agent.starts_with(b"evil"))
        .expect("the hostile request");
    assert_eq!(
        hostile.user_agent,
        "evil \"quoted\" back\\slash \u{fffd}\u{fffd} caf\u{e9}".as_bytes(),
        "the User-Agent, its bytes that are not UTF-8 as U+FFFD"
    );
    assert_eq!(hostile.referer, b"http://r/\"x");
    assert_eq!(hostile.bytes, "12");
    assert!(lines.iter().any(|l| l.user == "alice"));
    assert!(
        lines
            .iter()
            .any(|l| l.request.starts_with(b"GET /lf HTTP/1.1"))
    );
}

#[test]
fn combined_lines_parse_and_end_with_the_duration() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (_site, server) = serve("combined", Model::Loop, &log);
    send_requests(&server);
    let lines: Vec<Combined> = lines_of(&log).iter().map(|l| parse_combined(l)).collect();
    check_text_lines(&lines);
}

#[test]
fn combined_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let server = Server::start(&["--access-log", log.to_str().unwrap()]);
    assert_eq!(server.get("/").status, 200);
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.starts_with("127.0.0.1 - - ["))
    }));
    parse_combined(std::fs::read_to_string(&log).unwrap().trim_end());
}

#[test]
fn vhost_lines_are_combined_after_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (_site, server) = serve("vhost", Model::Threads, &log);
    send_requests(&server);
    let mut hosts = Vec::new();
    let mut parsed = Vec::new();
    for line in lines_of(&log) {
        let (host, rest) = line.split_once(' ').unwrap();
        hosts.push(host.to_owned());
        parsed.push(parse_combined(rest));
    }
    check_text_lines(&parsed);
    hosts.sort();
    assert_eq!(
        hosts,
        [
            "-",
            "-",
            "example.org",
            "example.org",
            "example.org:8080",
            "h",
            "h"
        ],
        "lower case, the port kept; none for HTTP/1.0 and the refused head"
    );
}

fn check_json(lines: &[String], tls: bool) -> Vec<serde_json::Value> {
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    let scheme = if tls { "https" } else { "http" };
    for object in &objects {
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys,
            [
                "bytes",
                "client",
                "duration_us",
                "host",
                "method",
                "path",
                "protocol",
                "query",
                "referer",
                "request",
                "scheme",
                "site",
                "status",
                "time",
                "tls",
                "user",
                "user_agent"
            ]
        );
        let time = object["time"].as_str().unwrap();
        assert!(
            time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "RFC 3339: {time}"
        );
        assert_eq!(object["scheme"], scheme);
        assert_eq!(
            object["site"], "default",
            "ROOT without tables: the default site"
        );
        assert_eq!(object["client"], "127.0.0.1");
        assert!(object["duration_us"].as_u64().unwrap() < 10_000_000);
        assert!(object["bytes"].is_u64() && object["status"].is_u64());
        match tls {
            true => assert!(
                object["tls"].as_str().unwrap().starts_with("TLSv1."),
                "{object}"
            ),
            false => assert!(object["tls"].is_null()),
        }
    }
    let find = |path: &str, method: &str| {
        objects
            .iter()
            .find(|o| o["path"] == path && o["method"] == method)
            .unwrap_or_else(|| panic!("{method} {path} in {objects:#?}"))
    };
    let missing = find("/missing", "GET");
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["query"], "x=1&y=%22");
    assert_eq!(missing["host"], "example.org");
    assert_eq!(find("/page.html", "HEAD")["bytes"], 0);
    let hostile = objects
        .iter()
        .find(|o| {
            o["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("evil"))
        })
        .unwrap();
    assert_eq!(
        hostile["user_agent"],
        "evil \"quoted\" back\\slash \u{fffd}\u{fffd} caf\u{e9}"
    );
    assert_eq!(hostile["referer"], "http://r/\"x");
    assert_eq!(hostile["user"], serde_json::Value::Null);
    assert_eq!(hostile["bytes"], 12);
    assert!(objects.iter().any(|o| o["user"] == "alice"));
    let refused = objects.iter().find(|o| o["status"] == 400).unwrap();
    assert!(refused["method"].is_null() && refused["path"].is_null());
    assert!(refused["request"].as_str().unwrap().starts_with("GET /lf"));
    let old = objects
        .iter()
        .find(|o| o["protocol"] == "HTTP/1.0")
        .unwrap();
    assert!(old["host"].is_null());
    objects
}

#[test]
fn json_lines_parse_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (_site, server) = serve("json", Model::Loop, &log);
    send_requests(&server);
    check_json(&lines_of(&log), false);
}

#[test]
fn json_over_tls_names_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (_site, server) = serve("json", Model::LoopTls, &log);
    send_requests(&server);
    check_json(&lines_of(&log), true);
}

/// With several sites in one log, each JSON line names the site that
/// answered, by its first host, which its `host` alone does not say for a
/// wildcard's name; `null` where no site did.
#[test]
fn json_lines_name_the_site_that_answered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "x").unwrap();
    let (log, config) = (
        dir.path().join("access.log"),
        dir.path().join("oneloop.toml"),
    );
    let root = dir.path().display();
    let text = format!(
        "[[site]]\nhosts = [\"a.example\"]\nroot = \"{root}\"\n\n\
         [[site]]\nhosts = [\"b.example\", \"*.b.example\"]\nroot = \"{root}\"\n"
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
        "--access-log-format",
        "json",
    ]);
    for host in ["a.example", "www.b.example", "c.example"] {
        server.request(&format!("GET /index.html HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(eventually(Duration::from_secs(5), || text()
        .lines()
        .count()
        == 3));
    let sites: Vec<(String, serde_json::Value)> = text()
        .lines()
        .map(|line| {
            let object: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                object["host"].as_str().unwrap().to_owned(),
                object["site"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sites,
        [
            ("a.example".to_owned(), serde_json::json!("a.example")),
            ("www.b.example".to_owned(), serde_json::json!("b.example")),
            ("c.example".to_owned(), serde_json::Value::Null),
        ]
    );
}

#[test]
fn the_duration_counts_a_slow_request() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (_site, server) = serve("json", Model::Loop, &log);
    let mut client = server.connect();
    client.write_all(b"GET /page.html HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    client.write_all(b"Host: h\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut client, false).status, 200);
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())
    }));
    let line = std::fs::read_to_string(&log).unwrap();
    let object: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    let us = object["duration_us"].as_u64().unwrap();
    assert!(
        (300_000..5_000_000).contains(&us),
        "from the head's first byte: {us}"
    );
}

/// `access-log` in a `[[site]]` table: that site's requests go to its own
/// file, in the same format, instead of the main log, where every other
/// site's (and what no site answered) still go; SIGUSR1 after a rename
/// reopens the site's file too.
fn each_site_logs_to_its_own_file(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("index.html"), name).unwrap();
    }
    let (main, own) = (dir.path().join("main.log"), dir.path().join("a.log"));
    let at = |name: &str| dir.path().join(name).display().to_string();
    let config = dir.path().join("oneloop.toml");
    let text = format!(
        "[[site]]\nhosts = [\"a.example\"]\nroot = \"{}\"\naccess-log = \"{}\"\n\n\
         [[site]]\nhosts = [\"b.example\"]\nroot = \"{}\"\n",
        at("a"),
        own.display(),
        at("b")
    );
    std::fs::write(&config, text).unwrap();
    let mut args = model.args();
    args.extend(
        [
            "--config",
            config.to_str().unwrap(),
            "--access-log",
            main.to_str().unwrap(),
            "--access-log-format",
            "vhost",
        ]
        .map(String::from),
    );
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let get = |host: &str, path: &str| {
        server.request(&format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
    };
    assert_eq!(get("a.example", "/index.html").status, 200);
    assert_eq!(get("a.example", "/missing").status, 404);
    assert_eq!(get("b.example", "/index.html").status, 200);
    assert_eq!(get("c.example", "/index.html").status, 404);
    let lines = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert!(eventually(Duration::from_secs(5), || {
        lines(&own).len() == 2 && lines(&main).len() == 2
    }));
    // In the threaded models each connection writes in its own thread:
    // the order of the lines is not the order of the requests.
    let (own_lines, main_lines) = (lines(&own), lines(&main));
    let has = |lines: &[String], start: &str, part: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(start) && l.contains(part))
    };
    let index = "\"GET /index.html HTTP/1.1\" 200 1 ";
    assert!(
        has(&own_lines, "a.example 127.0.0.1 - - [", index),
        "{own_lines:?}"
    );
    let missing = "\"GET /missing HTTP/1.1\" 404 ";
    assert!(
        has(&own_lines, "a.example 127.0.0.1 - - [", missing),
        "{own_lines:?}"
    );
    assert!(has(&main_lines, "b.example ", index), "{main_lines:?}");
    assert!(has(&main_lines, "c.example ", "\" 404 "), "{main_lines:?}");

    // logrotate: rename, signal; the next line is in a new file.
    let rotated = dir.path().join("a.log.1");
    std::fs::rename(&own, &rotated).unwrap();
    server.signal(libc::SIGUSR1);
    assert!(
        eventually(Duration::from_secs(5), || {
            assert_eq!(get("a.example", "/index.html").status, 200);
            !lines(&own).is_empty()
        }),
        "no new a.log after SIGUSR1: {}",
        server.log()
    );
    assert!(
        lines(&own)[0].starts_with("a.example "),
        "{:?}",
        lines(&own)
    );
    assert!(
        lines(&rotated).len() >= 2,
        "the rotated file keeps its lines"
    );
    assert!(
        lines(&main).iter().all(|l| !l.starts_with("a.example ")),
        "none of a's lines in the main log: {:?}",
        lines(&main)
    );
}
