//! A real client: curl reuses our keep-alive connections and decodes our gzip,
//! over HTTP and over HTTPS (trusting the test certificate with --cacert).

mod common;

use std::process::Command;

use common::{Model, Server, have_curl};

every_model!(
    curl_reuses_the_connection,
    curl_decodes_gzip,
    curl_uploads_and_downloads_a_file,
);

fn curl(server: &Server, args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--http1.1"])
        .args(server.curl_trust())
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn curl_reuses_the_connection(model: Model) {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let server = Server::start_model(model, &[]);
    let base = server.base_url();
    let (body, verbose) = curl(
        &server,
        &[
            "--verbose",
            &format!("{base}/echo/one"),
            &format!("{base}/echo/two"),
            &format!("{base}/user-agent"),
        ],
    );
    assert!(body.starts_with("onetwocurl/"), "{body}");
    assert!(
        verbose.contains("Re-using existing connection") || verbose.contains("Reusing existing"),
        "{verbose}"
    );
    assert_eq!(verbose.matches("Connected to").count(), 1, "{verbose}");
}

fn curl_decodes_gzip(model: Model) {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let server = Server::start_model(model, &[]);
    let url = format!("{}/echo/compressed-text", server.base_url());
    let (body, verbose) = curl(&server, &["--verbose", "--compressed", &url]);
    assert_eq!(body, "compressed-text");
    assert!(
        verbose
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{verbose}"
    );
}

fn curl_uploads_and_downloads_a_file(model: Model) {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_store(model, dir.path(), &[]);
    let source = dir.path().join(".source");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&source, &content).unwrap();
    let url = format!("{}/files/copy.bin", server.base_url());
    let (_, verbose) = curl(
        &server,
        &[
            "--verbose",
            "--data-binary",
            &format!("@{}", source.display()),
            &url,
        ],
    );
    assert!(verbose.contains("HTTP/1.1 201 Created"), "{verbose}");
    let target = dir.path().join(".downloaded");
    curl(&server, &["--output", target.to_str().unwrap(), &url]);
    assert_eq!(std::fs::read(target).unwrap(), content);
}
