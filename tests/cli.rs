//! The command line: mistakes are reported before the server starts, with a
//! clear message and a non-zero exit, never a panic.

mod common;

use std::process::Output;

fn oneloop(args: &[&str]) -> Output {
    common::oneloop().args(args).output().expect("run oneloop")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_refused(args: &[&str], needle: &str) {
    let output = oneloop(args);
    let message = stderr(&output);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(message.contains(needle), "{args:?}: {message}");
    assert!(!message.contains("panicked"), "{args:?}: {message}");
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let output = oneloop(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--bind",
        "--port",
        "--directory",
        "--max-body-bytes",
        "--header-timeout",
        "-v",
        "-q",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("[default: 4221]"));
}

#[test]
fn bad_flags_are_refused() {
    assert_refused(&["--no-such-flag"], "unexpected argument");
    assert_refused(&["--port", "99999"], "invalid value");
    assert_refused(&["--bind", "not an address"], "invalid value");
    assert_refused(&["--max-body-bytes", "lots"], "not a size");
    assert_refused(&["--header-timeout=-1"], "not a duration");
    assert_refused(&["--max-connections", "0"], "at least 1");
}

#[test]
fn nonsense_numbers_are_refused_before_start() {
    for flag in [
        "--header-timeout",
        "--keep-alive-timeout",
        "--body-timeout",
        "--send-timeout",
    ] {
        for zero in ["0", "0ms", "0.0"] {
            assert_refused(&[flag, zero], "a timeout must be longer than zero");
        }
    }
    for flag in [
        "--max-connections",
        "--threads",
        "--workers",
        "--listing-max-entries",
    ] {
        assert_refused(&[flag, "0"], &format!("{flag} must be at least 1"));
    }
    assert_refused(&["--bind", "[127.0.0.1]"], "not an IPv6 address");
    assert_refused(&["--bind", "bad host"], "not an address or a host name");
    assert_refused(&["--bind", "[::1"], "not an address or a host name");
}

#[test]
fn unusable_folders_are_refused() {
    assert_refused(
        &["--directory", "/no/such/folder"],
        "--directory /no/such/folder",
    );
    assert_refused(&["--directory", "/etc/hostname"], "not a directory");
    assert_refused(&["/no/such/site"], "ROOT /no/such/site");
}

/// `--bind` takes a name (every address it resolves to is bound) and a
/// bracketed IPv6 literal, as a URL writes it.
#[test]
fn bind_takes_names_and_bracketed_ipv6() {
    let server = common::Server::start(&["--bind", "localhost"]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    assert_eq!(server.get("/echo/named").body, b"named");
    drop(server);

    if std::net::TcpListener::bind("[::1]:0").is_err() {
        common::skip("this machine has no IPv6 loopback for --bind '[::1]'");
        return;
    }
    let server = common::Server::start(&["--bind", "[::1]"]);
    assert_eq!(server.addr.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(server.get("/echo/six").body, b"six");
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_refused(&["--port", &port], "cannot listen on 127.0.0.1");
    // Worker loops share their port through SO_REUSEPORT, which must not let
    // them in beside someone else.
    assert_refused(
        &["--port", &port, "--workers", "2"],
        &format!("cannot listen on 127.0.0.1:{port}: Address already in use"),
    );
}

#[test]
fn a_second_server_with_workers_cannot_share_the_first_ones_port() {
    let first = common::Server::start(&["--workers", "2"]);
    let port = first.addr.port().to_string();
    assert_refused(
        &["--port", &port, "--workers", "2"],
        &format!("cannot listen on 127.0.0.1:{port}"),
    );
    assert_refused(
        &["--port", &port],
        &format!("cannot listen on 127.0.0.1:{port}"),
    );
    assert_eq!(first.get("/echo/alone").body, b"alone");
}
