//! h2spec (summerwind/h2spec), the conformance suite for RFC 9113 and
//! RFC 7541, against every model: over TLS every one of its cases passes;
//! on cleartext every one but the case that sends a preface that is not
//! HTTP/2's, which a port that also speaks HTTP/1.1 reads as an HTTP/1.1
//! request and answers `400` (docs/testing.md). h2spec is in no package
//! registry: it is built from its own source, with Go, and found on PATH or
//! at `$H2SPEC`; without it these tests skip, saying so.

mod common;

use std::process::Command;

use common::{Model, Server, skip};

every_model!(h2spec_passes_every_case);

/// The one case a cleartext port that serves HTTP/1.1 too cannot pass: its
/// bytes are an HTTP/1.1 request (`INVALID CONNECTION PREFACE`), answered 400.
const CLEARTEXT_ONLY_FAILURE: &str = "http2/3.5: Sends invalid connection preface";

fn h2spec_passes_every_case(model: Model) {
    let program = std::env::var("H2SPEC").unwrap_or_else(|_| String::from("h2spec"));
    if Command::new(&program).arg("--version").output().is_err() {
        skip(&format!(
            "{program} not found: h2spec is in no package registry; build it from its source (Go) and put it on PATH or set H2SPEC"
        ));
        return;
    }
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<p>hello</p>\n").unwrap();
    let server = Server::start_model(model, &[site.path().to_str().unwrap()]);
    let report = site.path().join("h2spec.xml");
    let port = server.addr.port().to_string();
    let mut command = Command::new(&program);
    command.args(["--host", "127.0.0.1", "--port", &port, "--timeout", "5"]);
    command.arg("--junit-report").arg(&report);
    if model.tls() {
        command.args(["--tls", "--insecure"]);
    }
    let output = command.output().unwrap();
    let xml = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "h2spec wrote no report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let cases = cases(&xml);
    assert!(cases.len() >= 146, "only {} cases ran", cases.len());
    let failed: Vec<&str> = cases
        .iter()
        .filter(|case| !case.passed)
        .map(|case| case.name.as_str())
        .collect();
    let expected: &[&str] = if model.tls() {
        &[]
    } else {
        &[CLEARTEXT_ONLY_FAILURE]
    };
    assert_eq!(
        failed,
        expected,
        "{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        server.log()
    );
}

struct Case {
    /// `package: description`, as `http2/6.9.1: Sends ...`.
    name: String,
    passed: bool,
}

/// The test cases of h2spec's JUnit report: each `<testcase>` element, and
/// whether it holds a `<failure>` or an `<error>`.
fn cases(xml: &str) -> Vec<Case> {
    xml.split("<testcase ")
        .skip(1)
        .map(|element| {
            let element = element.split("</testcase>").next().unwrap_or(element);
            Case {
                name: format!(
                    "{}: {}",
                    attribute(element, "package"),
                    attribute(element, "classname")
                ),
                passed: !element.contains("<failure") && !element.contains("<error"),
            }
        })
        .collect()
}

fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    element
        .split_once(key.as_str())
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(value, _)| value)
}
