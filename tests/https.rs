//! HTTPS: what only TLS has. (Every other suite already runs over TLS too, as
//! the `event_loop_tls` and `threads_tls` models.) Certificates are made at
//! test time with rcgen; curl and `openssl s_client` are the real clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tls::{Client, client_config, make_identity};
use common::{Server, closes_within, read_all, read_response};

fn start_tls(extra: &[&str]) -> Server {
    let mut args: Vec<String> = common::tls::server_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_model_serves_https() {
    for model in ["loop", "threads", "pool"] {
        for workers in ["1", "2"] {
            if model != "loop" && workers == "2" {
                continue;
            }
            let server = start_tls(&["--model", model, "--workers", workers]);
            let mut stream = server.connect();
            stream
                .write_all(b"GET /echo/secure HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let r = read_response(&mut stream, false);
            assert_eq!(r.body, b"secure", "{model} x{workers}");
            let tls = stream.tls().expect("a TLS connection");
            assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN");
        }
    }
}

#[test]
fn curl_downloads_fifty_megabytes_exactly() {
    if !common::have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..50u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    let mut args = common::tls::server_args();
    args.extend([
        "--directory".into(),
        dir.path().to_string_lossy().into_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let rss_before = server.rss_kib();
    let target = dir.path().join("downloaded.bin");
    let status = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60"])
        .args(server.curl_trust())
        .args(["--output", target.to_str().unwrap()])
        .arg(format!("{}/files/big.bin", server.base_url()))
        .status()
        .unwrap();
    assert!(status.success());
    let got = std::fs::read(&target).unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "the bytes differ");
    // Slices go through one shared buffer: the file never sits in memory.
    let grown = server.peak_rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "peak RSS grew by {grown} KiB");
}

/// `openssl s_client` with `args`; its output, and whether the handshake
/// succeeded.
fn s_client(server: &Server, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &server.addr.to_string()])
        .args(["-CAfile", &common::tls::certificate_path()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let handshook = text.contains("Verify return code: 0 (ok)") && text.contains("Cipher is");
    (handshook && !text.contains("Cipher is (NONE)"), text)
}

#[test]
fn tls_versions_and_alpn_as_openssl_sees_them() {
    if !have("openssl") {
        common::skip("openssl is not installed (Debian package openssl; CI installs it)");
        return;
    }
    let server = start_tls(&[]);
    let (ok13, text) = s_client(&server, &["-tls1_3", "-alpn", "http/1.1"]);
    assert!(ok13, "TLS 1.3 refused:\n{text}");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    let (ok12, text) = s_client(&server, &["-tls1_2"]);
    assert!(ok12, "TLS 1.2 refused:\n{text}");
    // OpenSSL itself may not offer TLS 1.1 at its default security level; either
    // way no session may be agreed.
    let (ok11, text) = s_client(&server, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(!ok11, "TLS 1.1 accepted:\n{text}");
    assert!(!server.log().contains("WARN"), "{}", server.log());
}

#[test]
fn a_handshake_that_never_completes_is_closed_on_time() {
    let server = start_tls(&["--header-timeout", "1"]);
    // A TLS record header that promises more than ever comes.
    let mut partial = TcpStream::connect(server.addr).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let started = Instant::now();
    for stream in [&mut partial, &mut silent] {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Nothing, or a TLS alert (the server's close_notify), then the close.
        let mut reply = Vec::new();
        let closed = match stream.read_to_end(&mut reply) {
            Ok(_) => true,
            Err(e) => common::tls::is_a_close(&e),
        };
        assert!(closed, "still open after 5 s");
        assert!(
            reply.is_empty() || reply.first() == Some(&0x15),
            "{reply:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[test]
fn plaintext_to_the_tls_port_is_closed_quietly() {
    let server = start_tls(&["--header-timeout", "2"]);
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    assert!(
        !reply.starts_with(b"HTTP/"),
        "no plaintext answer: {reply:?}"
    );
    // Garbage byte by byte, too: one line of debug log at most, no warning.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    for byte in b"\x00\x01\x02\x03 not tls at all" {
        if garbage.write_all(&[*byte]).is_err() {
            break;
        }
    }
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = garbage.read_to_end(&mut Vec::new());
    assert_eq!(server.get("/echo/fine").body, b"fine", "still serving");
    let log = server.log();
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let first = make_identity("reload-first");
    let second = make_identity("reload-second");
    // The server reads its certificate from paths that will change under it.
    let live = common::tls::scratch_dir().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let live_cert = live.join("fullchain.pem");
    let live_key = live.join("privkey.pem");
    std::fs::copy(&first.cert, &live_cert).unwrap();
    std::fs::copy(&first.key, &live_key).unwrap();
    let server = Server::start(&[
        "--tls-cert",
        live_cert.to_str().unwrap(),
        "--tls-key",
        live_key.to_str().unwrap(),
    ]);
    let trusts = |identity: &common::tls::Identity| client_config(&[&identity.cert]);
    let served_with = |config| {
        let tcp = TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let mut client = Client::with_config(tcp, config);
        client
            .write_all(b"GET /echo/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .map(|()| read_response(&mut client, false).status)
    };
    assert_eq!(served_with(trusts(&first)).ok(), Some(200));
    let open = {
        let tcp = TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let mut client = Client::with_config(tcp, trusts(&first));
        client.handshake().unwrap();
        client
    };

    // certbot renews in place; then SIGHUP.
    std::fs::copy(&second.cert, &live_cert).unwrap();
    std::fs::copy(&second.key, &live_key).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    assert!(common::eventually(Duration::from_secs(5), || server
        .log()
        .contains("TLS certificate reloaded")));
    assert!(
        served_with(trusts(&first)).is_err(),
        "the old certificate is gone"
    );
    assert_eq!(
        served_with(trusts(&second)).ok(),
        Some(200),
        "new connections get the new one"
    );
    let mut open = open;
    open.write_all(b"GET /echo/open HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut open, false).body,
        b"open",
        "open ones are untouched"
    );

    // A broken renewal keeps the certificate that works.
    std::fs::write(&live_key, b"-----BEGIN PRIVATE KEY-----\nbroken\n").unwrap();
    std::fs::write(&live_cert, b"not a certificate").unwrap();
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    assert!(common::eventually(Duration::from_secs(5), || server
        .log()
        .contains("keeping the old one")));
    assert_eq!(served_with(trusts(&second)).ok(), Some(200));
}

#[test]
fn the_redirect_listener_sends_clients_to_https() {
    let server = start_tls(&["--redirect-http", "0", "--hsts", "31536000"]);
    let log = server.log();
    let redirect_port: u16 = log
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("a redirect port in {log}"));
    let plain = TcpStream::connect(("127.0.0.1", redirect_port)).unwrap();
    plain.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mut plain = Client::new(plain, false);
    plain
        .write_all(
            b"POST /a/b?c=d&e=f HTTP/1.1\r\nHost: example.org:8080\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
    let r = read_response(&mut plain, false);
    assert_eq!((r.status, r.reason.as_str()), (308, "Permanent Redirect"));
    let expected = format!("https://example.org:{}/a/b?c=d&e=f", server.addr.port());
    assert_eq!(r.header("location"), Some(expected.as_str()));
    assert_eq!(
        r.header("strict-transport-security"),
        None,
        "never over plain HTTP"
    );
    // HTTPS responses carry HSTS.
    let mut secure = server.connect();
    secure
        .write_all(b"GET /echo/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let r = read_response(&mut secure, false);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[test]
fn the_connection_cap_counts_tls_connections() {
    let server = start_tls(&["--max-connections", "2"]);
    let mut first = server.connect();
    first.handshake().unwrap();
    let mut second = server.connect();
    second.handshake().unwrap();
    // The third waits in the backlog: its handshake gets no answer.
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut third = Client::new(tcp, true);
    assert!(third.handshake().is_err(), "served beyond the cap");
    drop(first);
    third.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    third.handshake().unwrap();
    third
        .write_all(b"GET /echo/third HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut third, false).body, b"third");
    drop(second);
}

#[test]
fn bad_certificates_are_refused_at_start() {
    let good = make_identity("start-good");
    let other = make_identity("start-other");
    let dir = common::tls::scratch_dir();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, b"not a pem file").unwrap();
    let refused = |cert: &std::path::Path, key: &std::path::Path, needle: &str| {
        let output = common::oneloop()
            .args(["--port", "0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{cert:?} {key:?} accepted");
        assert!(message.contains(needle), "{needle:?} not in: {message}");
        assert!(!message.contains("panicked"), "{message}");
    };
    refused(&junk, &good.key, "--tls-cert");
    refused(&good.cert, &junk, "--tls-key");
    refused(&dir.join("missing.pem"), &good.key, "--tls-cert");
    refused(&good.cert, &other.key, "--tls-key");
    for lone in [
        &["--hsts", "60"][..],
        &["--redirect-http", "8080"],
        &["--tls-key", "k.pem"],
    ] {
        let output = common::oneloop().args(lone).output().unwrap();
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{lone:?} accepted alone");
        assert!(message.contains("--tls-"), "{lone:?}: {message}");
    }
}

/// The sockets a client leaves behind are closed by the server too.
#[test]
fn closes_leave_no_descriptor_behind() {
    let server = start_tls(&[]);
    let baseline = server.open_descriptors();
    for _ in 0..20 {
        let mut stream = server.connect();
        stream
            .write_all(b"GET /echo/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let _ = read_all(&mut stream);
        assert!(closes_within(&mut stream, Duration::from_secs(2)));
    }
    assert!(common::eventually(Duration::from_secs(3), || server
        .open_descriptors()
        <= baseline));
}
