//! What no client can grow: the file cache, however a path is spelled and
//! however many files are asked for. (The per-client limits are in
//! `limits.rs`; every other bound, and the test that drives it, is listed in
//! docs/architecture.md, "What no client can grow".)

mod common;

use std::io::Write;

use common::{Model, Server, read_response};

every_model!(spellings_of_one_file_are_one_cache_entry);

/// The `n`th spelling of `/hello.txt`: slashes doubled, `.` and `%2E`
/// segments, escapes in either case, from the digits of `n` in base 4.
fn spelling(n: usize) -> String {
    let mut path = String::from("/");
    let mut rest = n;
    while rest > 0 {
        path.push_str(["/", "./", "%2E/", "%2e/"][rest % 4]);
        rest /= 4;
    }
    let escaped = if n.is_multiple_of(2) { "%6C" } else { "%6c" };
    path.push_str(&"hello.txt".replacen('l', escaped, 1));
    path
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello, world\n").unwrap();
    dir
}

/// A number from the status page's JSON.
fn number(json: &str, key: &str) -> u64 {
    let at = json.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn status_json(server: &Server) -> String {
    server
        .request("GET /.status HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
        .text()
}

fn spellings_of_one_file_are_one_cache_entry(model: Model) {
    let dir = site();
    let root = dir.path().to_str().unwrap();
    let server = Server::start_model(model, &[root, "--status", "/.status"]);
    let mut stream = server.connect();
    for n in 0..200 {
        let request = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", spelling(n));
        stream.write_all(request.as_bytes()).unwrap();
        let response = read_response(&mut stream, false);
        assert_eq!(response.status, 200, "{}", spelling(n));
        assert_eq!(response.body, b"hello, world\n");
    }
    let json = status_json(&server);
    // One entry per cache: the two worker loops have one each.
    let caches = if model == Model::Workers { 2 } else { 1 };
    assert!(number(&json, "entries") <= caches, "{json}");
    assert!(number(&json, "hits") >= 200 - caches, "{json}");
}

/// Resident memory after `requests`, pipelined on one connection in batches.
fn rss_growth_kib(server: &Server, requests: impl Iterator<Item = String>) -> u64 {
    let before = server.rss_kib();
    let mut stream = server.connect();
    let mut batch = Vec::new();
    let mut pending = 0;
    let mut flush = |batch: &mut Vec<u8>, pending: &mut usize| {
        stream.write_all(batch).unwrap();
        for _ in 0..*pending {
            let response = read_response(&mut stream, false);
            assert!(
                matches!(response.status, 200 | 404),
                "{}",
                response.raw_head
            );
        }
        batch.clear();
        *pending = 0;
    };
    for target in requests {
        batch.extend_from_slice(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        pending += 1;
        if pending == 16 {
            flush(&mut batch, &mut pending);
        }
    }
    flush(&mut batch, &mut pending);
    let grown = server.rss_kib().saturating_sub(before);
    eprintln!("RSS grew by {grown} KiB");
    grown
}

/// Before keys were normalised, each of these was an entry of its own, and an
/// entry weighed only its 13 bytes: 20,000 spellings grew the server by
/// about 14 MiB. Now they are one entry, whatever the cache's size.
#[test]
fn a_flood_of_spellings_stays_within_the_cache() {
    let dir = site();
    let server = Server::start(&[dir.path().to_str().unwrap(), "--cache-bytes", "1M"]);
    let grown = rss_growth_kib(&server, (0..20_000).map(spelling));
    assert!(grown <= 1024 + 3 * 1024, "RSS grew by {grown} KiB");
}

/// Thousands of distinct files, in a cache a fraction of their size: what it
/// holds (entries, their registrations with the watch) stays near its budget.
#[test]
fn a_flood_of_distinct_files_stays_within_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for n in 0..6000 {
        std::fs::write(dir.path().join(format!("d/f{n}.txt")), [b'x'; 200]).unwrap();
    }
    let server = Server::start(&[dir.path().to_str().unwrap(), "--cache-bytes", "1M"]);
    // Twice over, so that the second pass evicts what the first filled.
    let files = (0..12_000).map(|n| format!("/d/f{}.txt", n % 6000));
    let grown = rss_growth_kib(&server, files);
    assert!(grown <= 1024 + 4 * 1024, "RSS grew by {grown} KiB");
}

/// Missing files are never cached, however many are asked for.
#[test]
fn a_flood_of_missing_files_holds_nothing() {
    let dir = site();
    let server = Server::start(&[dir.path().to_str().unwrap(), "--status", "/.status"]);
    let grown = rss_growth_kib(&server, (0..10_000).map(|n| format!("/missing-{n}.txt")));
    assert!(grown <= 2 * 1024, "RSS grew by {grown} KiB");
    let json = status_json(&server);
    assert_eq!(number(&json, "entries"), 0, "{json}");
}
