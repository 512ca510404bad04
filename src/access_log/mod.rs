//! The access log: what it records of each exchange, and how it writes it.
//!
//! ```text
//! 127.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] "GET /a.gif HTTP/1.1" 200 2326 "http://ref/" "curl/8.0"
//! ```
//!
//! - A [`Ledger`] is kept by each session while there is an access log. It
//!   notes each answered request (its request line, the user its Basic
//!   credentials name, referer, user agent and status) under the exchange
//!   number the core gave it, and turns it into an
//!   [`Entry`] when the core reports the response delivered, so the byte count
//!   is what was really sent, a response cut short included. The protocol
//!   core knows nothing of any of this.
//! - An entry carries the name of the site that answered it; an
//!   [`AccessLog`] holds the main log (`--access-log`) and the sites' own
//!   (`access-log` in a `[[site]]` table), and a site's entries go to its
//!   own instead of the main one.
//! - An [`AccessLog`] writes entries in the format asked for
//!   (`format.rs`: combined, vhost or JSON, each with the request's
//!   duration). Lines are
//!   gathered in memory and written once per loop turn, so the log never costs
//!   the loop a system call per request. Times are UTC. A failing log (full
//!   disk, closed pipe) is reported once and never stops the serving. SIGHUP
//!   and SIGUSR1 reopen a log file ([`AccessLog::reopen`]), for logrotate.

mod format;

pub(crate) use format::Format;
pub(crate) use format::line;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::app::auth::claimed_user;
use crate::config::LogTarget;
use crate::http::{Delivered, RequestHead, StatusCode};
use crate::log_file::LogFile;

/// Gathered lines are written early once they pass this size.
const FLUSH_AT: usize = 64 * 1024;

/// Whether a failure has been reported, by any access log of the process (each
/// worker loop has its own).
static FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);

/// The time of a line, in the text each format writes it in (formatted by
/// the driver's clock once a second).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogTime<'a> {
    /// `10/Oct/2000:13:55:36 +0000`
    pub common: &'a str,
    /// `2000-10-10T13:55:36Z`
    pub rfc3339: &'a str,
}

/// One line of the access log, but for the client's address and the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The request line as received, or what arrived of one that never
    /// parsed (`"-"` for a connection refused before it sent any).
    pub request_line: String,
    /// Its parts, when it parsed.
    pub request: Option<RequestParts>,
    /// The `Host` it named, in lower case, with its port if it gave one.
    pub host: Option<String>,
    /// The TLS version of the connection (`TLSv1.3`), `None` over plain HTTP.
    pub tls: Option<&'static str>,
    /// The user named by Basic credentials, right or wrong (a 401 beside it
    /// says which): who uploaded, and who was guessed at.
    pub user: Option<String>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub status: StatusCode,
    /// Body bytes that left (fewer than the body's length if it was cut short).
    pub body_bytes: u64,
    /// When its head began to be read.
    pub began: Instant,
    /// From `began` to the delivery of its response's last byte (see
    /// `format.rs`), once delivered.
    pub duration_us: u64,
    /// The site it was for (`None`: no site), which chooses its log.
    pub site: Option<Arc<str>>,
}

/// A parsed request line, in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestParts {
    pub method: String,
    /// Still percent-encoded, as sent.
    pub path: String,
    pub query: Option<String>,
    pub protocol: &'static str,
}

/// The entries of one connection's exchanges, from their answer to their
/// delivery.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Answered, not yet delivered: in the order they were queued, which is the
    /// order they are delivered in.
    answered: VecDeque<(u64, Entry)>,
    delivered: Vec<Entry>,
    /// The connection's TLS version, once its handshake is done.
    tls: Option<&'static str>,
}

impl Ledger {
    /// The connection speaks TLS `version` from now on.
    pub(crate) fn secured(&mut self, version: &'static str) {
        self.tls = Some(version);
    }

    /// Notes that `exchange`, whose head began to be read at `began`, was
    /// answered with `status`. The request is quoted from its head, or, for
    /// a request the application never saw, from the text the core kept of
    /// it.
    pub(crate) fn answered(
        &mut self,
        exchange: u64,
        head: Option<&RequestHead>,
        unseen_request: Option<String>,
        status: StatusCode,
        began: Instant,
        site: Option<Arc<str>>,
    ) {
        let field = |name| {
            head.and_then(|h| h.header(name))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let request_line = unseen_request
            .or_else(|| head.map(RequestHead::request_line))
            .unwrap_or_default();
        let request = head.map(|head| RequestParts {
            method: head.method_str().to_owned(),
            path: head.path().to_owned(),
            query: head.query().map(str::to_owned),
            protocol: head.version().as_str(),
        });
        let entry = Entry {
            request_line,
            request,
            host: field("host").map(|host| host.to_ascii_lowercase()),
            tls: self.tls,
            user: head
                .and_then(|h| h.header("authorization"))
                .and_then(claimed_user),
            referer: field("referer"),
            user_agent: field("user-agent"),
            status,
            body_bytes: 0,
            began,
            duration_us: 0,
            site,
        };
        self.answered.push_back((exchange, entry));
    }

    /// The core reports a response gone (or cut short), `at` now. (The
    /// session reads the clock for it, once per response and only with an
    /// access log: a loop's turn has one reading for all it does, so its
    /// time would make every request answered within a turn take no time.)
    pub(crate) fn delivered(&mut self, delivery: Delivered, at: Instant) {
        let position = self
            .answered
            .iter()
            .position(|(exchange, _)| *exchange == delivery.exchange);
        if let Some((_, mut entry)) = position.and_then(|at| self.answered.remove(at)) {
            entry.body_bytes = delivery.body_bytes;
            let duration = at.saturating_duration_since(entry.began);
            entry.duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
            self.delivered.push(entry);
        }
    }

    /// The entries delivered since the last call.
    pub(crate) fn take(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.delivered)
    }

    /// Entries held: answered and not yet delivered, or delivered and not
    /// yet taken.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.answered.len() + self.delivered.len()
    }
}

enum Sink {
    Stdout,
    File(LogFile),
}

impl Sink {
    fn open(target: &LogTarget) -> io::Result<Sink> {
        Ok(match target {
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::File(path) => Sink::File(
                LogFile::open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("access log {e}")))?,
            ),
        })
    }

    fn try_clone(&self) -> io::Result<Sink> {
        Ok(match self {
            Sink::Stdout => Sink::Stdout,
            Sink::File(file) => Sink::File(file.try_clone()?),
        })
    }

    fn file_mut(&mut self) -> Option<&mut LogFile> {
        match self {
            Sink::Stdout => None,
            Sink::File(file) => Some(file),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => Ok(()),
            Sink::File(file) => file
                .reopen()
                .map_err(|e| io::Error::new(e.kind(), format!("access log {e}"))),
        }
    }

    fn write_all(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(lines).and_then(|()| out.flush())
            }
            Sink::File(file) => file.write_all(lines),
        }
    }
}

/// One place lines go, and the lines gathered for it.
struct Output {
    sink: Sink,
    pending: Vec<u8>,
}

impl Output {
    fn new(sink: Sink) -> Output {
        Output {
            sink,
            pending: Vec::with_capacity(4096),
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self.sink.write_all(&self.pending);
        self.pending.clear();
        if let Err(error) = result
            && !FAILURE_REPORTED.swap(true, Ordering::Relaxed)
        {
            log::error!("access log: {error}; lines are being lost (reported once)");
        }
    }
}

/// The access log: the main one (`--access-log`), and the sites' own
/// (`access-log` in a `[[site]]` table). A site's requests go to its own
/// log instead of the main one, as with nginx's `access_log` in a
/// `server` block; everything else to the main log, if there is one.
pub(crate) struct AccessLog {
    format: Format,
    main: Option<Output>,
    /// By site name; a handful at most, so a scan costs less than a hash.
    sites: Vec<(Arc<str>, Output)>,
}

impl AccessLog {
    /// The main log alone (the unit tests').
    #[cfg(test)]
    pub(crate) fn open(target: &LogTarget, format: Format) -> io::Result<AccessLog> {
        Ok(AccessLog {
            format,
            main: Some(Output::new(Sink::open(target)?)),
            sites: Vec::new(),
        })
    }

    /// The logs `config` asks for (none: `None`), opened now, while the
    /// process may still be root.
    pub(crate) fn for_config(config: &crate::config::Config) -> io::Result<Option<AccessLog>> {
        let sites = config.site_access_logs();
        if config.access_log.is_none() && sites.is_empty() {
            return Ok(None);
        }
        let main = config
            .access_log
            .as_ref()
            .map(|target| Sink::open(target).map(Output::new))
            .transpose()?;
        let mut opened = Vec::with_capacity(sites.len());
        for (name, path) in sites {
            let sink = Sink::open(&LogTarget::File(path))
                .map_err(|e| io::Error::new(e.kind(), format!("site {name}: {e}")))?;
            opened.push((Arc::from(name), Output::new(sink)));
        }
        Ok(Some(AccessLog {
            format: config.access_log_format,
            main,
            sites: opened,
        }))
    }

    /// The files it writes to (not stdout): the main log's, then the sites'.
    pub(crate) fn files_mut(&mut self) -> impl Iterator<Item = &mut LogFile> {
        let main = self.main.iter_mut().map(|output| &mut output.sink);
        let sites = self.sites.iter_mut().map(|(_, output)| &mut output.sink);
        main.chain(sites).filter_map(Sink::file_mut)
    }

    /// Another access log into the same files (for another worker loop),
    /// opened before the server gives up its privileges.
    pub(crate) fn try_clone(&self) -> io::Result<AccessLog> {
        let main = self
            .main
            .as_ref()
            .map(|output| output.sink.try_clone().map(Output::new))
            .transpose()?;
        let mut sites = Vec::with_capacity(self.sites.len());
        for (name, output) in &self.sites {
            sites.push((Arc::clone(name), Output::new(output.sink.try_clone()?)));
        }
        Ok(AccessLog {
            format: self.format,
            main,
            sites,
        })
    }

    /// After a rotation: what is gathered goes to the old files, and what
    /// follows to new ones under the same names. A file that cannot be
    /// opened again keeps the old one, and the first error says why.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        self.flush();
        let mut result = Ok(());
        let main = self.main.iter_mut();
        for output in main.chain(self.sites.iter_mut().map(|(_, output)| output)) {
            if let Err(error) = output.sink.reopen()
                && result.is_ok()
            {
                result = Err(error);
            }
        }
        result
    }

    /// Adds a line for each entry of `client`, at `time` (from the
    /// driver's clock), to its site's log or the main one.
    pub(crate) fn record(&mut self, client: IpAddr, entries: Vec<Entry>, time: LogTime<'_>) {
        for entry in &entries {
            let own = entry.site.as_deref().and_then(|site| {
                let mut sites = self.sites.iter_mut();
                sites
                    .find(|(name, _)| **name == *site)
                    .map(|(_, output)| output)
            });
            let Some(output) = own.or(self.main.as_mut()) else {
                continue; // a site without a log of its own, and no main log
            };
            let line = line(self.format, client, entry, time);
            output.pending.extend_from_slice(line.as_bytes());
            if output.pending.len() >= FLUSH_AT {
                output.flush();
            }
        }
    }

    /// Writes the gathered lines.
    pub(crate) fn flush(&mut self) {
        let main = self.main.iter_mut();
        for output in main.chain(self.sites.iter_mut().map(|(_, output)| output)) {
            output.flush();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;
    use std::path::Path;

    const TIME: LogTime<'static> = LogTime {
        common: "10/Oct/2000:13:55:36 +0000",
        rfc3339: "2000-10-10T13:55:36Z",
    };

    fn entry(request_line: &str) -> Entry {
        Entry {
            request_line: request_line.into(),
            request: None,
            host: None,
            tls: None,
            user: None,
            referer: None,
            user_agent: None,
            status: StatusCode::OK,
            body_bytes: 1,
            began: Instant::now(),
            duration_us: 0,
            site: None,
        }
    }

    fn written(format: Format, entry: Entry) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut log = AccessLog::open(&LogTarget::File(path.clone()), format).unwrap();
        log.record("127.0.0.1".parse().unwrap(), vec![entry], TIME);
        log.flush();
        std::fs::read_to_string(path).unwrap()
    }

    fn hostile() -> Entry {
        Entry {
            request: Some(RequestParts {
                method: "GET".into(),
                path: "/a\"b".into(),
                query: Some("q=\\".into()),
                protocol: "HTTP/1.1",
            }),
            host: Some("example.org:8080".into()),
            user: Some("z\u{e9} d".into()),
            user_agent: Some("evil\nagent\u{fffd}".into()),
            body_bytes: 2326,
            duration_us: 1500,
            ..entry("GET /a\"b?q=\\ HTTP/1.1")
        }
    }

    #[test]
    fn writes_combined_log_format_and_the_duration() {
        assert_eq!(
            written(Format::Combined, hostile()),
            "127.0.0.1 - z\\xC3\\xA9\\x20d [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b?q=\\\\ HTTP/1.1\" \
             200 2326 \"-\" \"evil\\x0Aagent\\xEF\\xBF\\xBD\" 1500\n"
        );
    }

    #[test]
    fn vhost_puts_the_host_first() {
        let line = written(Format::Vhost, hostile());
        assert!(
            line.starts_with("example.org:8080 127.0.0.1 - z\\xC3\\xA9\\x20d [10/Oct/2000"),
            "{line}"
        );
        let line = written(Format::Vhost, entry("-"));
        assert!(line.starts_with("- 127.0.0.1 - - ["), "no host: {line}");
    }

    #[test]
    fn json_has_every_field() {
        let line = written(
            Format::Json,
            Entry {
                tls: Some("TLSv1.3"),
                site: Some("example.org".into()),
                ..hostile()
            },
        );
        assert_eq!(
            line,
            "{\"time\":\"2000-10-10T13:55:36Z\",\"host\":\"example.org:8080\",\"site\":\"example.org\",\
             \"scheme\":\"https\",\
             \"method\":\"GET\",\"path\":\"/a\\\"b\",\"query\":\"q=\\\\\",\"protocol\":\"HTTP/1.1\",\
             \"request\":\"GET /a\\\"b?q=\\\\ HTTP/1.1\",\"status\":200,\"bytes\":2326,\
             \"duration_us\":1500,\"client\":\"127.0.0.1\",\"user\":\"z\u{e9} d\",\"referer\":null,\
             \"user_agent\":\"evil\\nagent\u{fffd}\",\"tls\":\"TLSv1.3\"}\n"
        );
        let line = written(Format::Json, entry("BREW"));
        assert!(
            line.contains("\"scheme\":\"http\",\"method\":null"),
            "{line}"
        );
        assert!(line.contains("\"tls\":null}"), "{line}");
    }

    #[test]
    fn gathered_lines_are_written_before_they_pass_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let format = Format::Combined;
        let mut log = AccessLog::open(&LogTarget::File(path.clone()), format).unwrap();
        let entry = entry(&format!("GET /{} HTTP/1.1", "x".repeat(8000)));
        let client = "127.0.0.1".parse().unwrap();
        for _ in 0..100 {
            log.record(client, vec![entry.clone()], TIME);
            let pending = log.main.as_ref().map_or(0, |output| output.pending.len());
            assert!(pending < FLUSH_AT + 8200, "{pending}");
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() > 700_000,
            "written as it went"
        );
    }

    #[test]
    fn a_sites_entries_go_to_its_own_log_and_the_rest_to_the_main_one() {
        let dir = tempfile::tempdir().unwrap();
        let (main, own) = (dir.path().join("main.log"), dir.path().join("a.log"));
        let open = |path: &Path| Output::new(Sink::File(LogFile::open(path).unwrap()));
        let mut log = AccessLog {
            format: Format::Combined,
            main: Some(open(&main)),
            sites: vec![(Arc::from("a.example"), open(&own))],
        };
        let of = |site: Option<&str>, line: &str| Entry {
            site: site.map(Arc::from),
            ..entry(line)
        };
        let entries = vec![
            of(Some("a.example"), "GET /a"),
            of(Some("b.example"), "GET /b"),
            of(None, "GET /none"),
        ];
        log.record("127.0.0.1".parse().unwrap(), entries, TIME);
        log.flush();
        let read = |path: &Path| std::fs::read_to_string(path).unwrap();
        assert_eq!(read(&own).lines().count(), 1);
        assert!(read(&own).contains("\"GET /a\""));
        let main_text = read(&main);
        assert_eq!(main_text.lines().count(), 2, "{main_text}");
        assert!(!main_text.contains("GET /a"), "{main_text}");
        log.main = None;
        log.record("127.0.0.1".parse().unwrap(), vec![of(None, "GET /x")], TIME);
        assert!(log.sites[0].1.pending.is_empty(), "no main log: dropped");
    }

    #[test]
    fn entries_are_made_when_their_response_has_gone() {
        let mut ledger = Ledger::default();
        let request = head(
            "GET /x?y=1 HTTP/1.1\r\nHost: A.example:81\r\nReferer: http://r/\r\nUser-Agent: t\r\n\
             Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n",
        );
        let began = Instant::now();
        ledger.secured("TLSv1.2");
        ledger.answered(1, Some(&request), None, StatusCode::OK, began, None);
        let unseen = Some("BREW /pot".into());
        ledger.answered(2, None, unseen, StatusCode::BAD_REQUEST, began, None);
        assert!(ledger.take().is_empty(), "nothing has left yet");
        let delivered = |exchange, body_bytes, complete| Delivered {
            exchange,
            body_bytes,
            complete,
        };
        let at = began + std::time::Duration::from_micros(2500);
        ledger.delivered(delivered(1, 10, true), at);
        ledger.delivered(delivered(2, 3, false), at);
        let entries = ledger.take();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].request_line, "GET /x?y=1 HTTP/1.1");
        let parts = entries[0].request.as_ref().unwrap();
        assert_eq!(
            (
                parts.method.as_str(),
                parts.path.as_str(),
                parts.query.as_deref()
            ),
            ("GET", "/x", Some("y=1"))
        );
        assert_eq!(entries[0].host.as_deref(), Some("a.example:81"));
        assert_eq!(entries[0].tls, Some("TLSv1.2"));
        assert_eq!(entries[0].duration_us, 2500);
        assert_eq!(entries[0].referer.as_deref(), Some("http://r/"));
        assert_eq!(entries[0].user_agent.as_deref(), Some("t"));
        assert_eq!(entries[0].user.as_deref(), Some("alice"), "alice:secret");
        assert_eq!(entries[1].user, None);
        assert_eq!(entries[1].request, None);
        assert_eq!(entries[0].body_bytes, 10);
        assert_eq!(entries[1].request_line, "BREW /pot");
        assert_eq!(entries[1].status, StatusCode::BAD_REQUEST);
        assert_eq!(
            entries[1].body_bytes, 3,
            "what left of a response cut short"
        );
    }
}
