//! The status page (`--status`) on the real binary: what it counts is what
//! happened, in every model, in three formats, and only for whom it should.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::{Model, Server, eventually, read_response};

every_model!(
    it_counts_what_happened,
    connections_show_by_phase,
    responses_are_counted_by_status_and_rejections_by_reason,
    responses_and_bytes_are_counted_by_site
);

const STATUS: &str = "/.status";

/// `"key":N` in a JSON text.
fn number(json: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\":");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    json[at + needle.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

fn status_json(server: &Server) -> String {
    let response =
        server.request("GET /.status HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.text()
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>home</h1>").unwrap();
    dir
}

fn it_counts_what_happened(model: Model) {
    let root = site();
    let server = Server::start_model(model, &["--status", STATUS, root.path().to_str().unwrap()]);
    for _ in 0..3 {
        assert_eq!(server.get("/index.html").status, 200);
    }
    // A response is counted once its writer hears it has gone, which may be
    // after its client has read it (in another thread, or another loop).
    assert!(eventually(Duration::from_secs(5), || number(
        &status_json(&server),
        "requests"
    ) >= 4));
    let json = status_json(&server);
    assert!(number(&json, "body_bytes") >= 3 * 13, "{json}");
    assert!(number(&json, "accepted") >= 4, "{json}");
    let loops = match model {
        Model::Workers => 2,
        Model::Loop | Model::LoopTls => 1,
        Model::Threads | Model::Pool | Model::ThreadsTls => 0,
    };
    // A miss fills a cache; the other requests are served from it. Each
    // worker loop has a cache of its own.
    let (hits, misses) = (number(&json, "hits"), number(&json, "misses"));
    assert_eq!(hits + misses, 3, "{json}");
    assert!((1..=loops.max(1)).contains(&misses), "{json}");
    // Each entry holds the file's 13 bytes and its own key, names and
    // header blocks, all weighed against --cache-bytes.
    assert_eq!(number(&json, "entries"), misses, "{json}");
    let held = number(&json, "bytes_held");
    assert!(held > 13 * misses && held < 4096 * misses, "{json}");
    assert_eq!(number(&json, "loops"), loops, "{json}");
    if loops > 0 {
        assert!(number(&json, "turns") > 0, "{json}");
    }

    let html = server.get(STATUS);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(html.header("cache-control"), Some("no-store"));
    assert!(html.text().contains("<h1>oneloop status</h1>"));

    let metrics = server.get("/.status/metrics");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    for line in text.lines() {
        // Prometheus' text format: comments, or `name{labels} value`.
        let sample = line.starts_with("# HELP oneloop_")
            || line.starts_with("# TYPE oneloop_")
            || (line.starts_with("oneloop_")
                && line
                    .rsplit(' ')
                    .next()
                    .is_some_and(|v| v.parse::<f64>().is_ok()));
        assert!(sample, "not in the text format: {line:?}");
    }
    assert!(text.contains(&format!("oneloop_loops {loops}\n")), "{text}");
    assert!(
        text.contains(&format!("oneloop_cache_hits_total {hits}\n")),
        "{text}"
    );
}

fn responses_are_counted_by_status_and_rejections_by_reason(model: Model) {
    let root = site();
    let server = Server::start_model(
        model,
        &[
            "--status",
            STATUS,
            "--max-request-line",
            "1K",
            "--max-body-bytes",
            "100",
            root.path().to_str().unwrap(),
        ],
    );
    for _ in 0..3 {
        assert_eq!(server.get("/index.html").status, 200);
    }
    for path in ["/nope", "/nope/either"] {
        assert_eq!(server.get(path).status, 404);
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(2000));
    assert_eq!(server.request(&long).status, 414);
    assert_eq!(
        server
            .request("GET / HTTP/1.1\r\nHost: x\r\nBad Field: x\r\n\r\n")
            .status,
        400
    );
    let large = "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
    assert_eq!(server.request(large).status, 413);
    // Counted as they are answered, so before their clients read them: the
    // counts are exact at once, in every model. (The scrape itself is
    // counted once it is answered, after it reads them.)
    let text = server.get("/.status/metrics").text();
    for expected in [
        "oneloop_responses_total{code=\"200\",site=\"default\"} 3\n",
        "oneloop_responses_total{code=\"404\",site=\"default\"} 2\n",
        "oneloop_responses_total{code=\"414\",site=\"default\"} 1\n",
        "oneloop_responses_total{code=\"400\",site=\"default\"} 1\n",
        "oneloop_responses_total{code=\"413\",site=\"default\"} 1\n",
        "oneloop_rejected_total{reason=\"request_line_too_long\",code=\"414\"} 1\n",
        "oneloop_rejected_total{reason=\"bad_request\",code=\"400\"} 1\n",
        "oneloop_rejected_total{reason=\"body_too_large\",code=\"413\"} 1\n",
        "oneloop_rejected_total{reason=\"head_too_large\",code=\"431\"} 0\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    assert_eq!(
        text.matches("oneloop_responses_total{").count(),
        5,
        "{text}"
    );
    let json = status_json(&server);
    assert!(
        json.contains("\"responses\":{\"200\":4,\"400\":1,\"404\":2,\"413\":1,\"414\":1}"),
        "the scrape is a 200 now: {json}"
    );
    assert_eq!(number(&json, "request_line_too_long"), 1, "{json}");
}

fn connections_show_by_phase(model: Model) {
    let server = Server::start_model(model, &["--status", STATUS]);
    // One idle keep-alive connection, one halfway through a request head.
    let mut idle = server.connect();
    idle.write_all(b"GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle, false).body, b"a");
    let mut halfway = server.connect();
    halfway.write_all(b"GET /echo/b HTTP/1.1\r\nHo").unwrap();
    // Over TLS: one that never starts its handshake.
    let _silent = server.tls.then(|| TcpStream::connect(server.addr).unwrap());
    let settled = eventually(Duration::from_secs(5), || {
        let json = status_json(&server);
        number(&json, "waiting") >= 1
            && number(&json, "reading") >= 1
            && (!server.tls || number(&json, "handshake") >= 1)
    });
    assert!(settled, "{}", status_json(&server));
    drop((idle, halfway));
    let closed = eventually(Duration::from_secs(5), || {
        let json = status_json(&server);
        // Only the status request itself (and the silent one) remain.
        number(&json, "waiting") + number(&json, "reading") <= 1
    });
    assert!(closed, "{}", status_json(&server));
}

#[test]
fn waiting_at_the_cap_is_counted() {
    let server = Server::start(&["--status", STATUS, "--max-connections", "2"]);
    let first = server.connect();
    let mut second = server.connect();
    second
        .write_all(b"GET /echo/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut second, false).body, b"2");
    // The third knocks at the cap, and gets in when the first leaves.
    let mut third = server.connect();
    std::thread::sleep(Duration::from_millis(200));
    drop(first);
    third
        .write_all(b"GET /.status HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
        .unwrap();
    let json = read_response(&mut third, false).text();
    assert!(number(&json, "accept_pauses") >= 1, "{json}");
}

/// This machine's address on its way out, if it has one besides loopback.
fn outward_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks a route.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback()).then_some(ip)
}

#[test]
fn only_loopback_and_allowed_ranges_see_it() {
    let Some(outward) = outward_address() else {
        common::skip("this machine has no address besides loopback");
        return;
    };
    let ask = |server: &Server| {
        let addr = SocketAddr::new(outward, server.addr.port());
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /.status HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut stream, false).status
    };
    let closed = Server::start(&["--bind", "0.0.0.0", "--status", STATUS]);
    assert_eq!(ask(&closed), 403, "{outward} is not loopback");
    assert_eq!(closed.get(STATUS).status, 200, "loopback is");
    let allowed = format!("{outward}/32");
    let open = Server::start(&[
        "--bind",
        "0.0.0.0",
        "--status",
        STATUS,
        "--status-allow",
        "198.51.100.0/24",
        "--status-allow",
        &allowed,
    ]);
    assert_eq!(ask(&open), 200);
}

#[test]
fn without_the_flag_there_is_no_page() {
    let server = Server::start(&[]);
    assert_eq!(server.get(STATUS).status, 404);
    assert_eq!(server.get("/.status/metrics").status, 404);
}

/// Two sites of a configuration file, chosen by `Host`: each one's
/// responses by status and body bytes are its own, in Prometheus and JSON;
/// a host no site names is `other`.
fn responses_and_bytes_are_counted_by_site(model: Model) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [("a", "<h1>home</h1>"), ("b", "bee")] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("index.html"), body).unwrap();
    }
    let config = dir.path().join("oneloop.toml");
    let at = |name: &str| dir.path().join(name).display().to_string();
    let text = format!(
        "[[site]]\nhosts = [\"a.example\"]\nroot = \"{}\"\n\n\
         [[site]]\nhosts = [\"b.example\"]\nroot = \"{}\"\n",
        at("a"),
        at("b")
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start_model(
        model,
        &["--config", config.to_str().unwrap(), "--status", STATUS],
    );
    let get = |host: &str, path: &str| {
        server.request(&format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
    };
    let mut a_bytes = 0;
    for _ in 0..2 {
        let response = get("a.example", "/index.html");
        assert_eq!(response.status, 200);
        a_bytes += response.body.len();
    }
    let missing = get("a.example", "/nope");
    assert_eq!(missing.status, 404);
    a_bytes += missing.body.len();
    assert_eq!(get("b.example", "/index.html").status, 200);
    let mut b_bytes = 3;
    for _ in 0..2 {
        let response = get("B.example:80", "/nope");
        assert_eq!(response.status, 404);
        b_bytes += response.body.len();
    }
    assert_eq!(
        get("c.example", "/index.html").status,
        404,
        "no default site"
    );

    let metrics = || {
        server
            .request("GET /.status/metrics HTTP/1.1\r\nHost: a.example\r\n\r\n")
            .text()
    };
    let sent =
        |site: &str, bytes: usize| format!("oneloop_sent_bytes_total{{site=\"{site}\"}} {bytes}\n");
    // Bytes count once their writer hears they have gone (perhaps after
    // the client read them, and in another thread than the next request's);
    // responses as they are answered. The scrapes are a.example's too: each
    // adds its body to a.example's bytes, once it has gone.
    let scraped = std::cell::Cell::new(0);
    assert!(
        eventually(Duration::from_secs(5), || {
            let text = metrics();
            let counted = text.contains(&sent("a.example", a_bytes + scraped.get()))
                && text.contains(&sent("b.example", b_bytes));
            scraped.set(scraped.get() + text.len());
            counted
        }),
        "{}",
        metrics()
    );
    let text = metrics();
    let responses: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("oneloop_responses_total{"))
        .collect();
    // The scrapes are a.example's too: as many 200s as scrapes answered.
    let scrapes = responses
        .iter()
        .find_map(|l| l.strip_prefix("oneloop_responses_total{code=\"200\",site=\"a.example\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a.example's 200s")
        - 2;
    assert!(scrapes >= 1, "{text}");
    assert_eq!(
        responses,
        [
            format!(
                "oneloop_responses_total{{code=\"200\",site=\"a.example\"}} {}",
                scrapes + 2
            )
            .as_str(),
            "oneloop_responses_total{code=\"404\",site=\"a.example\"} 1",
            "oneloop_responses_total{code=\"200\",site=\"b.example\"} 1",
            "oneloop_responses_total{code=\"404\",site=\"b.example\"} 2",
            "oneloop_responses_total{code=\"404\",site=\"other\"} 1",
        ],
        "{text}"
    );
    let json = server
        .request("GET /.status HTTP/1.1\r\nHost: c.example\r\nAccept: application/json\r\n\r\n")
        .text();
    let b =
        format!("\"b.example\":{{\"responses\":{{\"200\":1,\"404\":2}},\"sent_bytes\":{b_bytes}}}");
    assert!(json.contains(&b), "{json}");
    assert!(
        json.contains("\"other\":{\"responses\":{\"404\":1}"),
        "{json}"
    );
}
