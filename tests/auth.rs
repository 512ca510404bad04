//! Basic authentication on the real binary: the password file, the 401
//! challenge, uploads-only, a real browser-like client (curl), the user in the
//! access log, guessing held off, the budget of checks, reloading, and
//! `--hash-password`.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::{Model, Server, eventually, have_curl, read_response};

every_model!(
    the_whole_site_asks_for_credentials,
    uploads_only_leaves_reading_open
);

/// A password file with these users, in a folder of its own.
fn password_file(users: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    let lines: Vec<String> = users.iter().map(|(u, p)| common::hash_line(u, p)).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn authorization(credentials: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    format!("Authorization: Basic {token}\r\n")
}

fn get_as(server: &Server, path: &str, credentials: Option<&str>) -> common::Response {
    let header = credentials.map(authorization).unwrap_or_default();
    server.request(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\n"))
}

fn the_whole_site_asks_for_credentials(model: Model) {
    let (_dir, users) = password_file(&[("alice", "wonder land")]);
    let server = Server::start_model(
        model,
        &[
            "--auth-file",
            &users,
            "--auth-realm",
            "Tea party",
            "--status",
            "/.status",
        ],
    );
    let refused = get_as(&server, "/echo/hi", None);
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Basic realm=\"Tea party\", charset=\"UTF-8\"")
    );
    assert_eq!(
        get_as(&server, "/echo/hi", Some("alice:wonder lan")).status,
        401
    );
    assert_eq!(
        get_as(&server, "/echo/hi", Some("bob:wonder land")).status,
        401
    );
    assert_eq!(
        get_as(&server, "/echo/hi", Some("alice:wonder land")).body,
        b"hi"
    );
    assert_eq!(
        get_as(&server, "/.status", None).status,
        401,
        "the status page too"
    );
    assert_eq!(
        get_as(&server, "/.status", Some("alice:wonder land")).status,
        200
    );
    // Failures are logged with who tried.
    assert!(
        eventually(Duration::from_secs(5), || server
            .log()
            .contains("wrong password for user \"bob\" from 127.0.0.1")),
        "{}",
        server.log()
    );
    assert!(server.log().contains("one password check takes"));
}

fn uploads_only_leaves_reading_open(model: Model) {
    let (_dir, users) = password_file(&[("alice", "wonder land")]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_store(
        model,
        store.path(),
        &["--auth-file", &users, "--auth-uploads-only"],
    );
    let upload = |credentials: Option<&str>| {
        let header = credentials.map(authorization).unwrap_or_default();
        server.request(&format!(
            "POST /files/note HTTP/1.1\r\nHost: x\r\n{header}Content-Length: 5\r\n\r\nhello"
        ))
    };
    assert_eq!(upload(None).status, 401);
    assert_eq!(upload(Some("alice:nope")).status, 401);
    assert!(
        !store.path().join("note").exists(),
        "nothing written without credentials"
    );
    assert_eq!(upload(Some("alice:wonder land")).status, 201);
    assert_eq!(std::fs::read(store.path().join("note")).unwrap(), b"hello");
    assert_eq!(
        get_as(&server, "/files/note", None).body,
        b"hello",
        "reading is open"
    );
    assert_eq!(get_as(&server, "/echo/open", None).body, b"open");
}

#[test]
fn curl_logs_in_with_basic() {
    if !have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let (_dir, users) = password_file(&[("z\u{e9}lie", "p\u{e4}ss:word")]);
    let server = Server::start(&["--auth-file", &users]);
    let url = format!("{}/echo/in", server.base_url());
    let curl = |user: &str| {
        let output = Command::new("curl")
            .args([
                "--silent",
                "--max-time",
                "10",
                "--write-out",
                " %{http_code}",
            ])
            .args(["--user", user, &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(
        curl("z\u{e9}lie:p\u{e4}ss:word"),
        "in 200",
        "UTF-8, and a colon in the password"
    );
    assert!(curl("z\u{e9}lie:wrong").ends_with(" 401"));
}

#[test]
fn the_access_log_names_the_user_and_never_the_password() {
    let (dir, users) = password_file(&[("alice", "wonder land")]);
    let access = dir.path().join("access.log");
    let server = Server::start(&[
        "--auth-file",
        &users,
        "--access-log",
        access.to_str().unwrap(),
    ]);
    assert_eq!(
        get_as(&server, "/echo/in", Some("alice:wonder land")).status,
        200
    );
    assert_eq!(
        get_as(&server, "/echo/guess", Some("root:toor")).status,
        401
    );
    assert_eq!(get_as(&server, "/echo/none", None).status, 401);
    let read = || std::fs::read_to_string(&access).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(5), || read().lines().count() == 3),
        "{}",
        read()
    );
    let log = read();
    let line = |path: &str| {
        log.lines()
            .find(|line| line.contains(path))
            .unwrap_or_else(|| panic!("no line for {path}: {log}"))
    };
    assert!(line("/echo/in").starts_with("127.0.0.1 - alice ["), "{log}");
    assert!(
        line("/echo/guess").starts_with("127.0.0.1 - root ["),
        "{log}"
    );
    assert!(line("/echo/none").starts_with("127.0.0.1 - - ["), "{log}");
    assert!(!log.contains("wonder") && !log.contains("toor"), "{log}");
}

#[test]
fn guessing_is_held_off_and_checks_have_a_budget() {
    let (_dir, users) = password_file(&[("alice", "wonder land")]);
    let server = Server::start(&["--auth-file", &users]);
    // One client guessing: after five failures it is held off, unchecked.
    let mut statuses = Vec::new();
    for n in 0..7 {
        statuses.push(get_as(&server, "/", Some(&format!("alice:guess{n}"))).status);
        // Within the budget of checks (four a second).
        std::thread::sleep(Duration::from_millis(260));
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 401, 429],
        "{}",
        server.log()
    );
    let held = get_as(&server, "/", Some("alice:wonder land"));
    assert_eq!(
        held.status, 429,
        "even the right password waits out the hold"
    );
    assert_eq!(held.header("retry-after"), Some("1"));
    assert!(server.log().contains("held off"), "{}", server.log());

    // Many clients guessing once each: the checks run out for a second.
    std::thread::sleep(Duration::from_millis(1100));
    let mut statuses = Vec::new();
    for n in 2..12u8 {
        let source = SocketAddr::from(([127, 0, 0, n], 0));
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&source.into()).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let header = authorization(&format!("alice:guess from {n}"));
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: x\r\n{header}\r\n").as_bytes())
            .unwrap();
        statuses.push(read_response(&mut stream, false).status);
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.iter().take(3).all(|&s| s == 401), "{statuses:?}");
}

#[test]
fn sighup_reads_the_password_file_again() {
    let (dir, users) = password_file(&[("alice", "first")]);
    let server = Server::start(&["--auth-file", &users]);
    assert_eq!(get_as(&server, "/", Some("alice:first")).status, 200);
    std::fs::write(
        Path::new(&users),
        common::hash_line("alice", "second") + "\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || server
        .log()
        .contains("password file reloaded: 1 users")));
    assert_eq!(get_as(&server, "/", Some("alice:first")).status, 401);
    assert_eq!(get_as(&server, "/", Some("alice:second")).status, 200);
    drop(dir);
}

#[test]
fn passwords_in_clear_beyond_loopback_are_warned_about() {
    let (_dir, users) = password_file(&[("alice", "x")]);
    let public = Server::start(&["--bind", "0.0.0.0", "--auth-file", &users]);
    assert!(
        public
            .log()
            .contains("passwords cross the network in clear")
    );
    let local = Server::start(&["--auth-file", &users]);
    assert!(!local.log().contains("in clear"), "{}", local.log());
    let mut tls_args = common::tls::server_args();
    tls_args.extend(["--bind", "0.0.0.0", "--auth-file", &users].map(String::from));
    let args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let secure = Server::start(&args);
    assert!(!secure.log().contains("in clear"), "{}", secure.log());
}

fn refused(args: &[&str], needle: &str) {
    let output = common::oneloop()
        .args(["--port", "0"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn bad_password_files_and_realms_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    std::fs::write(
        &path,
        format!("{}\nbob:hunter2\n", common::hash_line("alice", "x")),
    )
    .unwrap();
    let users = path.to_str().unwrap();
    refused(&["--auth-file", users], "line 2: the hash is neither");
    refused(
        &["--auth-file", "/no/such/file"],
        "--auth-file /no/such/file",
    );
    std::fs::write(&path, common::hash_line("alice", "x")).unwrap();
    refused(
        &["--auth-file", users, "--auth-realm", "a \"b\""],
        "--auth-realm",
    );
    let output = common::oneloop()
        .args(["--auth-uploads-only"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "--auth-uploads-only needs --auth-file"
    );
}

#[test]
fn hash_password_refuses_what_cannot_be_stored() {
    let output = common::hash_password("a:b", "x\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no `:`"));
    let output = common::hash_password("alice", "\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("an empty password"));
    let line = common::hash_line("alice", "with trailing space ");
    assert!(line.starts_with("alice:$argon2id$"), "{line}");
}
