//! Static files from ROOT: mapping, safety, caching headers, conditional
//! requests, ranges, sidecars, the cache, the access log, big files.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Model, Response, Server, read_response};

every_model!(
    serves_files_with_their_types,
    directories_without_a_slash_redirect_keeping_the_query,
    directories_without_an_index_are_404_or_listed,
    long_listings_are_cut_and_follow_their_directory,
    listings_are_never_an_xss_vector,
    nothing_outside_root_is_ever_served,
    flags_open_what_is_closed_by_default,
    builtins_take_precedence_unless_switched_off,
    only_get_and_head_are_allowed,
    head_sends_exactly_the_headers_of_get,
    validators_are_sent,
    conditional_requests,
    a_304_leaves_the_connection_in_step,
    single_ranges,
    unsatisfiable_and_invalid_ranges,
    multiple_ranges_come_back_as_multipart,
    if_range_decides_between_206_and_200,
    precompressed_sidecars_are_negotiated,
    small_text_files_are_gzipped_for_clients_that_accept_it,
    an_edited_file_is_served_on_the_very_next_request,
    a_replaced_large_file_is_served_on_the_very_next_request,
    changes_on_the_way_to_a_file_are_seen_at_once,
    files_bigger_than_the_cache_and_a_disabled_cache_serve_the_same_bytes,
    a_100_mib_file_goes_out_exactly_without_growing_memory,
    ranges_past_2_and_4_gib_are_served_from_the_right_offset,
    the_access_log_has_one_combined_line_per_response,
    a_failing_access_log_is_reported_once_and_serving_goes_on,
    curl_ranges_conditionals_and_compression,
);

/// `bytes` gzip-compressed, as a precompressed sidecar holds them.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A site under a temporary folder, with a secret next to it (outside ROOT).
struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("www");
        std::fs::create_dir_all(root.join("docs/empty")).unwrap();
        std::fs::create_dir_all(root.join("about")).unwrap();
        std::fs::write(base.join("secret.txt"), "TOP SECRET").unwrap();
        std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(root.join("about/index.html"), "<h1>about</h1>").unwrap();
        std::fs::write(root.join("style.css"), "body { color: red }").unwrap();
        std::fs::write(root.join("app.js"), "console.log(1)").unwrap();
        std::fs::write(root.join("logo.svg"), "<svg/>").unwrap();
        std::fs::write(root.join("a b.txt"), "spaced").unwrap();
        std::fs::write(root.join("café.txt"), "utf-8 name").unwrap();
        std::fs::write(root.join(".env"), "HIDDEN").unwrap();
        std::fs::write(root.join("docs/readme.txt"), "readme").unwrap();
        let digits: String = (0..1000)
            .map(|i| char::from(b'0' + (i % 10) as u8))
            .collect();
        std::fs::write(root.join("digits.txt"), digits).unwrap();
        symlink(base.join("secret.txt"), root.join("leak")).unwrap();
        symlink(root.join("style.css"), root.join("alias.css")).unwrap();
        Site { _dir: dir, root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn serve(&self, model: Model, flags: &[&str]) -> Server {
        let mut args = vec![self.root.to_str().unwrap()];
        args.extend_from_slice(flags);
        Server::start_model(model, &args)
    }
}

fn get_with(server: &Server, path: &str, fields: &str) -> Response {
    server.request(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n{fields}\r\n"))
}

// ----- mapping URLs to files -------------------------------------------------

fn serves_files_with_their_types(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    for (path, body, content_type) in [
        ("/", "<h1>home</h1>", "text/html; charset=utf-8"),
        ("/index.html", "<h1>home</h1>", "text/html; charset=utf-8"),
        ("/about/", "<h1>about</h1>", "text/html; charset=utf-8"),
        (
            "/style.css",
            "body { color: red }",
            "text/css; charset=utf-8",
        ),
        ("/logo.svg", "<svg/>", "image/svg+xml; charset=utf-8"),
        ("/a%20b.txt", "spaced", "text/plain; charset=utf-8"),
        ("/caf%C3%A9.txt", "utf-8 name", "text/plain; charset=utf-8"),
        (
            "/docs/readme.txt?version=2",
            "readme",
            "text/plain; charset=utf-8",
        ),
        (
            "/alias.css",
            "body { color: red }",
            "text/css; charset=utf-8",
        ),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), body, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{path}");
    }
    assert!(
        server
            .get("/app.js")
            .header("content-type")
            .unwrap()
            .ends_with("javascript; charset=utf-8")
    );
    std::fs::write(site.path("blob.unknownext"), "?").unwrap();
    assert_eq!(
        server.get("/blob.unknownext").header("content-type"),
        Some("application/octet-stream")
    );
}

fn directories_without_a_slash_redirect_keeping_the_query(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let r = server.get("/about?lang=en");
    assert_eq!((r.status, r.reason.as_str()), (301, "Moved Permanently"));
    assert_eq!(r.header("location"), Some("/about/?lang=en"));
    let r = server.get("//about");
    assert_eq!(
        r.header("location"),
        Some("/about/"),
        "never a protocol-relative URL"
    );
}

fn directories_without_an_index_are_404_or_listed(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    assert_eq!(server.get("/docs/").status, 404);

    let server = site.serve(model, &["--listing"]);
    let r = server.get("/docs/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = r.text();
    assert!(html.contains("<a href=\"../\">../</a>"));
    assert!(html.contains("<a href=\"empty/\">empty/</a>"));
    assert!(html.contains("<a href=\"readme.txt\">readme.txt</a>"));
    assert!(html.find("empty/").unwrap() < html.find("readme.txt").unwrap());
    assert!(html.contains("name=\"viewport\""));
}

fn long_listings_are_cut_and_follow_their_directory(model: Model) {
    let site = Site::new();
    let many = site.path("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..30 {
        std::fs::write(many.join(format!("f{i:02}.txt")), b"x").unwrap();
    }
    let server = site.serve(model, &["--listing", "--listing-max-entries", "10"]);
    let html = server.get("/many/").text();
    let rows = |html: &str| html.matches("<tr><td><a href=\"f").count();
    assert_eq!(rows(&html), 10, "{html}");
    assert!(
        html.contains("f09.txt") && !html.contains("f10.txt"),
        "the first ten by name"
    );
    assert!(
        html.contains("10 entries are shown, 20 more are not"),
        "{html}"
    );

    // A change to the directory shows on the next request.
    std::fs::remove_file(many.join("f00.txt")).unwrap();
    let html = server.get("/many/").text();
    assert!(
        !html.contains("f00.txt") && html.contains("f10.txt"),
        "{html}"
    );
    assert!(html.contains("19 more are not"), "{html}");
}

fn listings_are_never_an_xss_vector(model: Model) {
    let site = Site::new();
    let hostile = [
        "<script>alert(1)<",
        "\"><img src=x onerror=alert(1)>",
        "javascript:alert(1)",
        "a&b'c",
    ];
    for name in hostile {
        std::fs::write(site.path("docs/empty").join(name), "x").unwrap();
    }
    let server = site.serve(model, &["--listing"]);
    let html = server.get("/docs/empty/").text();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("href=\"javascript:"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(html.contains("href=\"javascript%3Aalert%281%29\""));
    assert!(html.contains("a&amp;b&#39;c"));
    // Every link works.
    for name in hostile {
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert_eq!(
            server.get(&format!("/docs/empty/{encoded}")).text(),
            "x",
            "{name}"
        );
    }
}

fn nothing_outside_root_is_ever_served(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    for path in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/docs%2F..%2F..%2Fsecret.txt",
        "/..%5Csecret.txt",
        "/docs/%00",
        "/leak",
        "/.env",
        "/%2Eenv",
        "//etc/passwd",
        "/etc/passwd",
    ] {
        let r = server.get(path);
        assert!(matches!(r.status, 403 | 404), "{path}: {}", r.status);
        assert!(
            !r.text().contains("TOP SECRET") && !r.text().contains("HIDDEN"),
            "{path}"
        );
        assert!(!r.text().contains("root:"), "{path}");
    }
    assert_eq!(server.get("/../secret.txt").status, 403);
    assert_eq!(server.get("/leak").status, 404);
    assert_eq!(server.get("/.env").status, 404);
    // Absolute-form targets go through the same rules.
    let r = server.request("GET http://t/../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 403);
}

fn flags_open_what_is_closed_by_default(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &["--follow-symlinks", "--hidden"]);
    assert_eq!(server.get("/leak").text(), "TOP SECRET");
    assert_eq!(server.get("/.env").text(), "HIDDEN");
    assert_eq!(server.get("/../secret.txt").status, 403, ".. stays refused");
}

fn builtins_take_precedence_unless_switched_off(model: Model) {
    let site = Site::new();
    std::fs::create_dir(site.path("echo")).unwrap();
    std::fs::write(site.path("echo/hi"), "a file").unwrap();
    let server = site.serve(model, &[]);
    assert_eq!(server.get("/echo/hi").text(), "hi");
    let server = site.serve(model, &["--no-builtins"]);
    assert_eq!(server.get("/echo/hi").text(), "a file");
    assert_eq!(server.get("/user-agent").status, 404);
}

fn only_get_and_head_are_allowed(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = server.request(&format!(
            "{method} /style.css HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        ));
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

fn headers_without_date(r: &Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("date"))
        .cloned()
        .collect()
}

fn head_sends_exactly_the_headers_of_get(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &["--listing"]);
    for (path, fields) in [
        ("/", ""),
        ("/digits.txt", ""),
        ("/digits.txt", "Range: bytes=0-9\r\n"),
        ("/digits.txt", "Range: bytes=0-9,20-29\r\n"),
        ("/docs/", ""),
        ("/about", ""),
        ("/missing", ""),
    ] {
        let mut stream = server.connect();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{fields}\r\nHEAD {path} HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes())
            .unwrap();
        let get = read_response(&mut stream, false);
        let head = read_response(&mut stream, true);
        let mut get_headers = headers_without_date(&get);
        let mut head_headers = headers_without_date(&head);
        // Multipart boundaries are unique per response.
        for headers in [&mut get_headers, &mut head_headers] {
            for (_, value) in headers.iter_mut() {
                if let Some(at) = value.find("boundary=") {
                    value.truncate(at);
                }
            }
        }
        assert_eq!(get_headers, head_headers, "{path} {fields}");
        assert!(head.body.is_empty());
        // The connection is still in step: HEAD sent no body.
        stream
            .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut stream, false).text(),
            "body { color: red }"
        );
    }
}

// ----- validators and conditional requests ------------------------------------

fn validators_are_sent(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let r = server.get("/style.css");
    let etag = r.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    let last_modified = r.header("last-modified").unwrap();
    let mtime = std::fs::metadata(site.path("style.css"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        httpdate::parse_http_date(last_modified).unwrap(),
        httpdate::parse_http_date(&httpdate::fmt_http_date(mtime)).unwrap()
    );
    assert_eq!(
        server.get("/style.css").header("etag"),
        Some(etag),
        "stable"
    );
    std::fs::write(site.path("style.css"), "body { color: blue }").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_ne!(
        server.get("/style.css").header("etag"),
        Some(etag),
        "changes with the file"
    );
}

fn conditional_requests(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let first = server.get("/style.css");
    let etag = first.header("etag").unwrap().to_string();
    let last_modified = first.header("last-modified").unwrap().to_string();
    let earlier = "Thu, 01 Jan 1970 00:00:00 GMT";

    let status = |fields: String| get_with(&server, "/style.css", &fields).status;
    assert_eq!(status(format!("If-None-Match: {etag}\r\n")), 304);
    assert_eq!(
        status(format!("If-None-Match: \"nope\", W/{etag}\r\n")),
        304,
        "weak comparison"
    );
    assert_eq!(status("If-None-Match: *\r\n".into()), 304);
    assert_eq!(status("If-None-Match: \"nope\"\r\n".into()), 200);
    assert_eq!(
        status(format!("If-Modified-Since: {last_modified}\r\n")),
        304
    );
    assert_eq!(status(format!("If-Modified-Since: {earlier}\r\n")), 200);
    assert_eq!(status("If-Modified-Since: not a date\r\n".into()), 200);
    assert_eq!(
        status(format!(
            "If-None-Match: \"nope\"\r\nIf-Modified-Since: {last_modified}\r\n"
        )),
        200,
        "INM wins"
    );
    assert_eq!(status(format!("If-Match: {etag}\r\n")), 200);
    assert_eq!(status("If-Match: \"nope\"\r\n".into()), 412);
    assert_eq!(status(format!("If-Unmodified-Since: {earlier}\r\n")), 412);
    assert_eq!(
        status(format!("If-Unmodified-Since: {last_modified}\r\n")),
        200
    );

    let not_modified = get_with(&server, "/style.css", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(not_modified.reason, "Not Modified");
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(
        not_modified.header("last-modified"),
        Some(last_modified.as_str())
    );
    assert!(not_modified.header("date").is_some());
    assert_eq!(not_modified.header("content-length"), None);
    assert!(not_modified.body.is_empty());
}

fn a_304_leaves_the_connection_in_step(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let etag = server.get("/style.css").header("etag").unwrap().to_string();
    let mut stream = server.connect();
    stream
        .write_all(format!("GET /style.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\nGET /app.js HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut stream, false).status, 304);
    assert_eq!(read_response(&mut stream, false).text(), "console.log(1)");
}

// ----- ranges ------------------------------------------------------------------

fn digits(first: usize, last: usize) -> String {
    (first..=last)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect()
}

fn single_ranges(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    for (spec, first, last) in [
        ("0-9", 0, 9),
        ("990-", 990, 999),
        ("-5", 995, 999),
        ("995-5000", 995, 999),
    ] {
        let r = get_with(&server, "/digits.txt", &format!("Range: bytes={spec}\r\n"));
        assert_eq!(
            (r.status, r.reason.as_str()),
            (206, "Partial Content"),
            "{spec}"
        );
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {first}-{last}/1000").as_str())
        );
        assert_eq!(r.text(), digits(first, last), "{spec}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}

fn unsatisfiable_and_invalid_ranges(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let r = get_with(&server, "/digits.txt", "Range: bytes=1000-\r\n");
    assert_eq!(
        (r.status, r.reason.as_str()),
        (416, "Range Not Satisfiable")
    );
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    for invalid in ["bytes=9-1", "bytes=x-y", "pages=0-1", "bytes=0-1,,oops"] {
        let r = get_with(&server, "/digits.txt", &format!("Range: {invalid}\r\n"));
        assert_eq!(r.status, 200, "{invalid}");
        assert_eq!(r.body.len(), 1000);
    }
    let overlapping = get_with(&server, "/digits.txt", "Range: bytes=0-600,100-999,0-\r\n");
    assert_eq!(
        overlapping.status, 200,
        "overlapping ranges are not amplified"
    );
    assert_eq!(overlapping.body.len(), 1000);
}

/// Splits a multipart/byteranges body into (Content-Range, data) parts.
fn parse_multipart(response: &Response) -> Vec<(String, String, Vec<u8>)> {
    let content_type = response.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap();
    let body = &response.body;
    let delimiter = format!("\r\n--{boundary}");
    let text = String::from_utf8_lossy(body).into_owned();
    let mut parts = Vec::new();
    let mut sections: Vec<&str> = text.split(&delimiter).collect();
    assert_eq!(sections.remove(0), "", "the body starts with a delimiter");
    assert_eq!(
        sections.pop(),
        Some("--\r\n"),
        "and ends with the close delimiter"
    );
    for section in sections {
        let section = section.strip_prefix("\r\n").unwrap();
        let (head, data) = section.split_once("\r\n\r\n").unwrap();
        let mut part_type = String::new();
        let mut range = String::new();
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(": ").unwrap();
            match name {
                "Content-Type" => part_type = value.to_string(),
                "Content-Range" => range = value.to_string(),
                other => panic!("unexpected part header {other}"),
            }
        }
        parts.push((part_type, range, data.as_bytes().to_vec()));
    }
    parts
}

fn multiple_ranges_come_back_as_multipart(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let r = get_with(&server, "/digits.txt", "Range: bytes=500-509, 0-4,-3\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    let parts = parse_multipart(&r);
    let expected = [
        ("bytes 500-509/1000", digits(500, 509)),
        ("bytes 0-4/1000", digits(0, 4)),
        ("bytes 997-999/1000", digits(997, 999)),
    ];
    assert_eq!(parts.len(), 3);
    for ((part_type, range, data), (want_range, want_data)) in parts.iter().zip(expected) {
        assert_eq!(part_type, "text/plain; charset=utf-8");
        assert_eq!(range, want_range);
        assert_eq!(String::from_utf8_lossy(data), want_data);
    }
}

fn if_range_decides_between_206_and_200(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let full = server.get("/digits.txt");
    let etag = full.header("etag").unwrap();
    let last_modified = full.header("last-modified").unwrap();
    let with = |if_range: &str| {
        get_with(
            &server,
            "/digits.txt",
            &format!("Range: bytes=0-9\r\nIf-Range: {if_range}\r\n"),
        )
        .status
    };
    assert_eq!(with(etag), 206);
    assert_eq!(with(last_modified), 206);
    assert_eq!(with("\"stale\""), 200);
    assert_eq!(with("Thu, 01 Jan 1970 00:00:00 GMT"), 200);
}

// ----- precompressed sidecars ---------------------------------------------------

fn precompressed_sidecars_are_negotiated(model: Model) {
    let site = Site::new();
    let text = "body { color: red } /* padding */".repeat(20);
    std::fs::write(site.path("big.css"), &text).unwrap();
    let gz = gzip(text.as_bytes());
    std::fs::write(site.path("big.css.gz"), &gz).unwrap();
    std::fs::write(site.path("big.css.br"), b"pretend-brotli").unwrap();
    let server = site.serve(model, &[]);

    let r = get_with(&server, "/big.css", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, gz);

    let r = get_with(&server, "/big.css", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.body, b"pretend-brotli");

    let r = server.get("/big.css");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        r.header("vary"),
        Some("Accept-Encoding"),
        "caches must know it varies"
    );
    assert_eq!(r.text(), text);

    let r = get_with(&server, "/big.css", "Accept-Encoding: gzip;q=0, br;q=0\r\n");
    assert_eq!(r.header("content-encoding"), None);

    // Ranges apply to the encoded bytes.
    let r = get_with(
        &server,
        "/big.css",
        "Accept-Encoding: gzip\r\nRange: bytes=0-1\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &gz[..2]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-1/{}", gz.len()).as_str())
    );

    // Each representation has its own entity tag.
    let identity = server.get("/big.css").header("etag").unwrap().to_string();
    let gzipped = get_with(&server, "/big.css", "Accept-Encoding: gzip\r\n")
        .header("etag")
        .unwrap()
        .to_string();
    assert_ne!(identity, gzipped);

    // Files without sidecars do not vary.
    assert_eq!(
        get_with(&server, "/style.css", "Accept-Encoding: gzip\r\n").header("vary"),
        None
    );
}

// ----- gzip on the fly ---------------------------------------------------------

/// `bytes` gunzipped.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

fn small_text_files_are_gzipped_for_clients_that_accept_it(model: Model) {
    let site = Site::new();
    let page = "<p>a paragraph of the page, and another one like it</p>\n".repeat(40);
    std::fs::write(site.path("page.html"), &page).unwrap();
    std::fs::write(site.path("photo.png"), [7u8; 2048]).unwrap();
    let server = site.serve(model, &[]);
    let gzip_ok = "Accept-Encoding: gzip\r\n";

    let r = get_with(&server, "/page.html", gzip_ok);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("accept-ranges"), None, "always sent whole");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.body.len() < page.len() / 4, "{} bytes", r.body.len());
    assert_eq!(gunzip(&r.body), page.as_bytes());
    let weak = r.header("etag").unwrap().to_owned();
    assert!(weak.starts_with("W/\""), "{weak}");

    // Everyone else gets the file itself, told that it varies.
    let r = server.get("/page.html");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.text(), page);
    let strong = r.header("etag").unwrap().to_owned();
    assert!(
        strong.starts_with('"') && strong != weak[2..],
        "{strong} {weak}"
    );

    // A range of the compressed bytes is not offered: the whole of them.
    let r = get_with(
        &server,
        "/page.html",
        "Accept-Encoding: gzip\r\nRange: bytes=0-9\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(gunzip(&r.body), page.as_bytes());
    // The weak tag revalidates, and never matches where a strong one must.
    let r = get_with(
        &server,
        "/page.html",
        &format!("{gzip_ok}If-None-Match: {weak}\r\n"),
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(weak.as_str()));
    let r = get_with(
        &server,
        "/page.html",
        &format!("{gzip_ok}If-Match: {weak}\r\n"),
    );
    assert_eq!(r.status, 412);

    // Not compressed: files too small to gain, and types compressed already.
    for path in ["/style.css", "/photo.png"] {
        let r = get_with(&server, path, gzip_ok);
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.header("vary"), None, "{path}");
    }

    // An edit is compressed anew, on the very next request.
    let edited = page.replace("another", "a second");
    std::fs::write(site.path("page.html"), &edited).unwrap();
    let r = get_with(&server, "/page.html", gzip_ok);
    assert_eq!(gunzip(&r.body), edited.as_bytes());

    // --no-compress: the file as it is, for everyone.
    let plain = site.serve(model, &["--no-compress"]);
    let r = get_with(&plain, "/page.html", gzip_ok);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.text(), edited);
}

// ----- moving bytes: the cache and sendfile -----------------------------------

fn an_edited_file_is_served_on_the_very_next_request(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    std::fs::write(site.path("live.txt"), "version-1").unwrap();
    let first = server.get("/live.txt");
    assert_eq!(first.text(), "version-1");
    let old_tag = first.header("etag").unwrap().to_owned();
    // Same size, rewritten in place, at once: nothing but the bytes and a
    // modification time within the same clock tick tell.
    let mut keep_alive = server.connect();
    for version in ["version-2", "version-3"] {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(site.path("live.txt"))
            .unwrap();
        file.write_all(version.as_bytes()).unwrap();
        drop(file);
        assert_eq!(server.get("/live.txt").text(), version, "a new connection");
        keep_alive
            .write_all(b"GET /live.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut keep_alive, false).text(),
            version,
            "a kept one"
        );
    }
    let revalidated = get_with(
        &server,
        "/live.txt",
        &format!("If-None-Match: {old_tag}\r\n"),
    );
    assert_eq!(
        revalidated.status, 200,
        "the old tag is not the file's any more"
    );
    // Replaced the way deploy tools do it: a new file renamed over the old.
    std::fs::write(site.path(".live.new"), "renamed into place").unwrap();
    std::fs::rename(site.path(".live.new"), site.path("live.txt")).unwrap();
    assert_eq!(server.get("/live.txt").text(), "renamed into place");
    std::fs::remove_file(site.path("live.txt")).unwrap();
    assert_eq!(server.get("/live.txt").status, 404, "deleted: at once");
}

fn a_replaced_large_file_is_served_on_the_very_next_request(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    let version = |v: u8| vec![v; 200_000];
    std::fs::write(site.path("big.bin"), version(1)).unwrap();
    assert_eq!(server.get("/big.bin").body, version(1));
    std::fs::write(site.path(".big.new"), version(2)).unwrap();
    std::fs::rename(site.path(".big.new"), site.path("big.bin")).unwrap();
    assert_eq!(server.get("/big.bin").body, version(2));
    std::fs::write(site.path("big.bin"), version(3)).unwrap();
    assert_eq!(server.get("/big.bin").body, version(3));
    std::fs::remove_file(site.path("big.bin")).unwrap();
    assert_eq!(server.get("/big.bin").status, 404);
}

fn changes_on_the_way_to_a_file_are_seen_at_once(model: Model) {
    let site = Site::new();
    let server = site.serve(model, &[]);
    // A sidecar appearing changes what a gzip client gets.
    let gzip_client = "Accept-Encoding: gzip\r\n";
    assert_eq!(
        get_with(&server, "/style.css", gzip_client).header("content-encoding"),
        None
    );
    std::fs::write(site.path("style.css.gz"), gzip(b"body { color: red }")).unwrap();
    let r = get_with(&server, "/style.css", gzip_client);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    // A directory renamed: what was under it is gone, and its new name serves.
    assert_eq!(server.get("/docs/readme.txt").text(), "readme");
    std::fs::rename(site.path("docs"), site.path("manual")).unwrap();
    assert_eq!(server.get("/docs/readme.txt").status, 404);
    assert_eq!(server.get("/manual/readme.txt").text(), "readme");
    // A symlink retargeted.
    assert_eq!(server.get("/alias.css").text(), "body { color: red }");
    std::fs::remove_file(site.path("alias.css")).unwrap();
    symlink(site.path("app.js"), site.path("alias.css")).unwrap();
    assert_eq!(server.get("/alias.css").text(), "console.log(1)");
    // A directory's index.
    assert_eq!(server.get("/about/").text(), "<h1>about</h1>");
    std::fs::write(site.path("about/index.html"), "<h1>ABOUT</h1>").unwrap();
    assert_eq!(server.get("/about/").text(), "<h1>ABOUT</h1>");
}

fn files_bigger_than_the_cache_and_a_disabled_cache_serve_the_same_bytes(model: Model) {
    let site = Site::new();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(site.path("medium.bin"), &content).unwrap();
    for flags in [
        &[][..],
        &["--cache-bytes", "0"][..],
        &["--cache-bytes", "0", "--cache-open-files", "0"][..],
        &["--cache-file-bytes", "1M"][..],
    ] {
        let server = site.serve(model, flags);
        for _ in 0..2 {
            assert_eq!(server.get("/medium.bin").body, content, "{flags:?}");
            assert_eq!(
                server.get("/style.css").text(),
                "body { color: red }",
                "{flags:?}"
            );
        }
        let r = get_with(&server, "/medium.bin", "Range: bytes=100000-100009\r\n");
        assert_eq!(r.body, &content[100_000..100_010], "{flags:?}");
    }
}

/// A sparse 5 GiB file (no disk used), with bytes written where 32-bit
/// offsets break: across 2^31 (a signed 32-bit `off_t` goes negative) and past
/// 2^32 (an unsigned one wraps to the start). On 32-bit ARM this is the test
/// that `sendfile64` and 64-bit lengths are used all the way.
fn ranges_past_2_and_4_gib_are_served_from_the_right_offset(model: Model) {
    use std::os::unix::fs::FileExt;
    const GIB: u64 = 1 << 30;
    let site = Site::new();
    let file = std::fs::File::create(site.path("huge.bin")).unwrap();
    file.set_len(5 * GIB).unwrap();
    file.write_all_at(b"<2GiB|>", 2 * GIB - 3).unwrap();
    file.write_all_at(b"past 4 GiB", 4 * GIB + 7).unwrap();
    file.write_all_at(b"end", 5 * GIB - 3).unwrap();
    drop(file);
    let server = site.serve(model, &[]);

    let head = server.request("HEAD /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5368709120"));
    for (first, expected) in [
        (2 * GIB - 3, &b"<2GiB|>"[..]),
        (4 * GIB + 7, b"past 4 GiB"),
        (5 * GIB - 3, b"end"),
    ] {
        let last = first + expected.len() as u64 - 1;
        let r = get_with(
            &server,
            "/huge.bin",
            &format!("Range: bytes={first}-{last}\r\n"),
        );
        assert_eq!(r.status, 206, "bytes {first}-{last}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {first}-{last}/5368709120").as_str())
        );
        assert_eq!(r.body, expected, "bytes {first}-{last}");
    }
    // A suffix range counts back from a 64-bit length.
    let r = get_with(&server, "/huge.bin", "Range: bytes=-3\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"end"[..]));
}

fn a_100_mib_file_goes_out_exactly_without_growing_memory(model: Model) {
    use std::io::Read;
    let site = Site::new();
    let size = 100 * 1024 * 1024;
    {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(site.path("huge.bin")).unwrap());
        let block: Vec<u8> = (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for i in 0..100u8 {
            let mut block = block.clone();
            block[0] = i;
            file.write_all(&block).unwrap();
        }
    }
    let server = site.serve(model, &[]);
    let before = server.peak_rss_kib();
    let mut stream = server.connect();
    stream
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = common::read_head(&mut stream);
    assert!(
        head.contains(&format!("Content-Length: {size}\r\n")),
        "{head}"
    );
    // Read slowly at first, so the server has to hold the response for a while.
    let mut received = vec![0u8; size];
    let mut got = 0;
    let mut chunk = 0;
    while got < size {
        let n = stream.read(&mut received[got..]).unwrap();
        assert!(n > 0, "connection closed after {got} bytes");
        got += n;
        chunk += 1;
        if chunk < 20 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let expected = std::fs::read(site.path("huge.bin")).unwrap();
    assert!(received == expected, "byte-exact");
    // Growth, not a total: under an emulator (ONELOOP_RUNNER) the process
    // measured is qemu's, some 30 MiB before the server serves anything.
    let after = server.peak_rss_kib();
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "peak RSS {after} KiB (was {before} KiB before the transfer)"
    );
}

// ----- the access log -------------------------------------------------------------

fn the_access_log_has_one_combined_line_per_response(model: Model) {
    let site = Site::new();
    let log_path = site.root.parent().unwrap().join("access.log");
    let server = site.serve(model, &["--access-log", log_path.to_str().unwrap()]);
    server.request("GET /style.css HTTP/1.1\r\nHost: t\r\nReferer: http://ref.example/\r\nUser-Agent: tester/1.0\r\n\r\n");
    server.get("/missing");
    server.request("GET / HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n\r\n");
    server.request("BAD REQUEST\r\n\r\n");
    assert!(common::eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log_path).is_ok_and(|t| t.lines().count() == 4)
    }));
    let text = std::fs::read_to_string(&log_path).unwrap();
    // Requests on different connections may be logged in either order by
    // threads or separate loops, as in any concurrent server.
    for expected in [
        "\"GET /style.css HTTP/1.1\" 200 19 \"http://ref.example/\" \"tester/1.0\"",
        "\"GET /missing HTTP/1.1\" 404 14 \"-\" \"-\"",
        "\"GET / HTTP/1.1\" 206 4 \"-\" \"-\"",
        "\"BAD REQUEST\" 400 16 \"-\" \"-\"",
    ] {
        // The combined fields, then the duration in microseconds.
        let line = text
            .lines()
            .filter_map(|line| line.rsplit_once(' '))
            .find(|(fields, duration)| {
                fields.ends_with(expected) && duration.parse::<u64>().is_ok()
            })
            .map(|(fields, _)| fields)
            .unwrap_or_else(|| panic!("no line ends with {expected} and a duration in:\n{text}"));
        let (client, rest) = line.split_once(" - - [").unwrap();
        assert_eq!(client, "127.0.0.1");
        let (time, _) = rest.split_once("] ").unwrap();
        assert_eq!(time.len(), "10/Oct/2000:13:55:36 +0000".len(), "{time}");
        assert!(time.ends_with(" +0000"));
    }
}

fn a_failing_access_log_is_reported_once_and_serving_goes_on(model: Model) {
    if !Path::new("/dev/full").exists() {
        common::skip("no /dev/full on this system");
        return;
    }
    let site = Site::new();
    let server = site.serve(model, &["--access-log", "/dev/full"]);
    for _ in 0..5 {
        assert_eq!(server.get("/style.css").status, 200);
    }
    assert!(common::eventually(Duration::from_secs(2), || server
        .log()
        .contains("access log")));
    assert_eq!(
        server.log().matches("access log").count(),
        1,
        "{}",
        server.log()
    );
}

#[test]
fn the_access_log_can_go_to_stdout() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let site = Site::new();
    let mut child = common::oneloop()
        .args([
            site.root.to_str().unwrap(),
            "--port",
            "0",
            "--access-log",
            "-",
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // -q hides the "listening on" line, so find the port through /proc.
    let pid = child.id();
    let port = common::eventually(Duration::from_secs(5), || listening_port(pid).is_some())
        .then(|| listening_port(pid).unwrap())
        .expect("the server listens");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = common::Client::new(tcp, false);
    stream
        .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = common::read_all(&mut stream);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("\"GET /style.css HTTP/1.1\" 200 19"),
        "{line}"
    );
}

/// The port a process listens on, from /proc/net/tcp and its descriptors.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&"0A");
        let inode = fields.get(9)?;
        if listening && inodes.iter().any(|i| i == inode) {
            let port = fields[1].split(':').nth(1)?;
            u16::from_str_radix(port, 16).ok()
        } else {
            None
        }
    })
}

// ----- through a real client ----------------------------------------------------

fn curl_ranges_conditionals_and_compression(model: Model) {
    use std::process::Command;
    if !common::have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let site = Site::new();
    let text = "compress me ".repeat(100);
    std::fs::write(site.path("page.txt"), &text).unwrap();
    std::fs::write(site.path("page.txt.gz"), gzip(text.as_bytes())).unwrap();
    let server = site.serve(model, &[]);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .args(server.curl_trust())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = server.base_url();
    assert_eq!(
        curl(&["-r", "10-19", &format!("{base}/digits.txt")]),
        digits(10, 19)
    );
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-z",
        "Fri, 01 Jan 2100 00:00:00 GMT",
        &format!("{base}/digits.txt"),
    ]);
    assert_eq!(code, "304", "curl -z with a later date");
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-z",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        &format!("{base}/digits.txt"),
    ]);
    assert_eq!(code, "200");
    assert_eq!(curl(&["--compressed", &format!("{base}/page.txt")]), text);
    let headers = curl(&[
        "--compressed",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/page.txt"),
    ]);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{headers}"
    );
    // The same for a file with no sidecar, gzipped by the server itself.
    let page = "<li>an item of a long list</li>\n".repeat(60);
    std::fs::write(site.path("list.html"), &page).unwrap();
    let url = format!("{base}/list.html");
    assert_eq!(curl(&["--compressed", &url]), page);
    let headers = curl(&["--compressed", "-D", "-", "-o", "/dev/null", &url]);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{headers}"
    );
}
