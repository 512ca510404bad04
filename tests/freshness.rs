//! The order between a file change and a request, in-process and without a
//! poll: the session takes the changes in before it reads the bytes received,
//! so nothing but the session is needed for a request sent after an edit to
//! see the edit. (The black-box tests in static_files.rs show it on the real
//! binary, where a loop also drains the watch as it turns readable; this one
//! shows it does not depend on that, or on timing.)

use oneloop::testkit::FixtureSite;

fn body(output: &[u8]) -> &[u8] {
    let at = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    output.get(at + 4..).unwrap_or_default()
}

fn get(site: &FixtureSite, path: &str) -> Vec<u8> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let transcript = site.converse(request.as_bytes(), &[]);
    body(&transcript.output).to_vec()
}

#[test]
fn a_request_received_after_an_edit_is_answered_with_it() {
    let site = FixtureSite::new().expect("a fixture site");
    let path = site.root.join("docs/guide.txt");
    assert_eq!(get(&site, "/docs/guide.txt"), b"a guide\n");
    // Cached now. The same size, rewritten in place: only inotify tells.
    for version in [&b"A GUIDE\n"[..], b"a-guide\n", b"a guide\n"] {
        std::fs::write(&path, version).expect("an edit");
        assert_eq!(get(&site, "/docs/guide.txt"), version);
    }
    std::fs::remove_file(&path).expect("a deletion");
    let gone = site.converse(
        b"GET /docs/guide.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        &[],
    );
    assert!(gone.text().starts_with("HTTP/1.1 404 "), "{}", gone.text());
}
