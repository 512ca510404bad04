//! The status page's live view in a real browser: Debian's Chromium,
//! headless, driven through its DevTools protocol. One page is opened and
//! never reloaded; connections come and go; the page, which fetches the JSON
//! view every second and draws it, must show each change.

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Where Debian's package puts the browser, if it is installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// A headless browser with one page open, driven over the DevTools protocol.
struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped, until it is taken.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Browser {
    /// Starts the browser on `url`.
    fn open(program: &PathBuf, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        // The flags the machine notes call for: no sandbox as root, no GPU,
        // and none of the background traffic that a closed network refuses.
        let child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--remote-debugging-port={port}"))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Killed however this ends: a panic below must not leave it running.
        let mut child = KillOnDrop(Some(child));
        let page = wait_for_page(port, url);
        let (socket, _) = tungstenite::connect(page).expect("the page's DevTools socket");
        let stream = match socket.get_ref() {
            tungstenite::stream::MaybeTlsStream::Plain(stream) => stream,
            _ => panic!("a plain socket to localhost"),
        };
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        Browser {
            child: child.0.take().expect("the browser, still ours"),
            socket: into_plain(socket),
            next_id: 0,
            _profile: profile,
        }
    }

    /// Evaluates `expression` in the page; its value.
    fn eval(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": { "expression": expression, "returnByValue": true },
        });
        self.socket
            .send(Message::text(call.to_string()))
            .expect("send to the browser");
        loop {
            let message = self.socket.read().expect("a message from the browser");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let reply: Value = serde_json::from_str(text).expect("JSON from the browser");
            if reply["id"] == id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    }

    /// Waits until `expression` evaluates to `expected` in the page.
    fn wait_for(&mut self, expression: &str, expected: Value, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self.eval(expression) == expected {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The DevTools WebSocket address of the page showing `url`, once the
/// browser lists it.
fn wait_for_page(port: u16, url: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if let Some(list) = http_get(port, "/json/list") {
            let targets: Value = serde_json::from_str(&list).unwrap_or(Value::Null);
            let page = targets.as_array().and_then(|targets| {
                targets.iter().find(|t| {
                    t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
                })
            });
            if let Some(address) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                return address.to_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromium listed no page for {url}");
}

/// A plain GET to the browser's DevTools endpoint. It keeps the connection
/// open whatever the request says, so the body is read by its length.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

fn into_plain(
    socket: WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
) -> WebSocket<TcpStream> {
    let stream = match socket.into_inner() {
        tungstenite::stream::MaybeTlsStream::Plain(stream) => stream,
        _ => panic!("a plain socket to localhost"),
    };
    WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The page's rows for connections from `client`, as the page counts them.
fn rows_from(client: &str) -> String {
    format!(
        "[...document.querySelectorAll('#loops td')].filter(td => td.textContent === '{client}').length"
    )
}

#[test]
fn the_live_view_follows_connections_without_a_reload() {
    let Some(program) = chromium() else {
        common::skip("chromium is not installed (Debian package chromium; CI installs it)");
        return;
    };
    let server = Server::start(&["--status", "/.status"]);
    let url = format!("{}/.status", server.base_url());
    let mut browser = Browser::open(&program, &url);
    let client = Ipv4Addr::new(127, 0, 0, 2);
    // The page is listed before it has loaded: wait until it has drawn its
    // first view, then mark this document, to tell later whether it was
    // ever replaced.
    assert!(
        browser.wait_for(
            "document.querySelector('#loops section') !== null",
            json!(true),
            Duration::from_secs(10)
        ),
        "the page draws the loops"
    );
    browser.eval("window.__oneloop_same_page = true");

    assert!(
        browser.wait_for(&rows_from("127.0.0.2"), json!(0), Duration::from_secs(10)),
        "nobody from 127.0.0.2 yet"
    );
    // Three keep-alive connections, each past a request, then idle.
    let mut held: Vec<common::Client> = (0..3)
        .map(|_| {
            let mut stream = server.connect_from(client);
            std::io::Write::write_all(&mut stream, b"GET /echo/x HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert_eq!(common::read_response(&mut stream, false).status, 200);
            stream
        })
        .collect();
    assert!(
        browser.wait_for(&rows_from("127.0.0.2"), json!(3), Duration::from_secs(10)),
        "the page shows the three: {}",
        browser.eval("document.getElementById('loops').innerText")
    );
    let idle = "document.querySelector('g[data-state=\"Idle\"]').dataset.count >= 3";
    assert_eq!(
        browser.eval(idle),
        json!(true),
        "the diagram counts them Idle"
    );

    // They go, and the same page (never reloaded) shows none of them.
    held.clear();
    assert!(
        browser.wait_for(&rows_from("127.0.0.2"), json!(0), Duration::from_secs(10)),
        "the page lets them go: {}",
        browser.eval("document.getElementById('loops').innerText")
    );
    assert_eq!(
        browser.eval("window.__oneloop_same_page === true"),
        json!(true),
        "one page load throughout"
    );
}
