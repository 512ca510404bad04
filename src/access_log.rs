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
//! - An [`AccessLog`] writes entries in the Combined Log Format. Lines are
//!   gathered in memory and written once per loop turn, so the log never costs
//!   the loop a system call per request. Times are UTC. A failing log (full
//!   disk, closed pipe) is reported once and never stops the serving. SIGHUP
//!   and SIGUSR1 reopen a log file ([`AccessLog::reopen`]), for logrotate.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::auth::claimed_user;
use crate::config::LogTarget;
use crate::http::{Delivered, RequestHead, StatusCode};
use crate::log_file::LogFile;

/// Gathered lines are written early once they pass this size.
const FLUSH_AT: usize = 64 * 1024;

/// Whether a failure has been reported, by any access log of the process (each
/// worker loop has its own).
static FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);

/// One line of the access log, but for the client's address and the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub request_line: String,
    /// The user named by Basic credentials, right or wrong (a 401 beside it
    /// says which): who uploaded, and who was guessed at.
    pub user: Option<String>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub status: StatusCode,
    /// Body bytes that left (fewer than the body's length if it was cut short).
    pub body_bytes: u64,
}

/// The entries of one connection's exchanges, from their answer to their
/// delivery.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Answered, not yet delivered: in the order they were queued, which is the
    /// order they are delivered in.
    answered: VecDeque<(u64, Entry)>,
    delivered: Vec<Entry>,
}

impl Ledger {
    /// Notes that `exchange` was answered with `status`. The request is quoted
    /// from its head, or, for a request the application never saw, from the
    /// text the core kept of it.
    pub(crate) fn answered(
        &mut self,
        exchange: u64,
        head: Option<&RequestHead>,
        unseen_request: Option<String>,
        status: StatusCode,
    ) {
        let field = |name| {
            head.and_then(|h| h.header(name))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let request_line = unseen_request
            .or_else(|| head.map(RequestHead::request_line))
            .unwrap_or_default();
        let entry = Entry {
            request_line,
            user: head
                .and_then(|h| h.header("authorization"))
                .and_then(claimed_user),
            referer: field("referer"),
            user_agent: field("user-agent"),
            status,
            body_bytes: 0,
        };
        self.answered.push_back((exchange, entry));
    }

    /// The core reports a response gone (or cut short).
    pub(crate) fn delivered(&mut self, delivery: Delivered) {
        let position = self
            .answered
            .iter()
            .position(|(exchange, _)| *exchange == delivery.exchange);
        if let Some((_, mut entry)) = position.and_then(|at| self.answered.remove(at)) {
            entry.body_bytes = delivery.body_bytes;
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

pub(crate) struct AccessLog {
    sink: Sink,
    pending: Vec<u8>,
}

impl AccessLog {
    pub(crate) fn open(target: &LogTarget) -> io::Result<AccessLog> {
        let sink = match target {
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::File(path) => Sink::File(
                LogFile::open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("access log {e}")))?,
            ),
        };
        Ok(AccessLog::over(sink))
    }

    fn over(sink: Sink) -> AccessLog {
        AccessLog {
            sink,
            pending: Vec::with_capacity(4096),
        }
    }

    /// The file it writes to, if not stdout.
    pub(crate) fn file_mut(&mut self) -> Option<&mut LogFile> {
        match &mut self.sink {
            Sink::Stdout => None,
            Sink::File(file) => Some(file),
        }
    }

    /// Another access log into the same file (for another worker loop), opened
    /// before the server gives up its privileges.
    pub(crate) fn try_clone(&self) -> io::Result<AccessLog> {
        let sink = match &self.sink {
            Sink::Stdout => Sink::Stdout,
            Sink::File(file) => Sink::File(file.try_clone()?),
        };
        Ok(AccessLog::over(sink))
    }

    /// After a rotation: what is gathered goes to the old file, and what
    /// follows to a new one under the same name. On failure the old file
    /// stays, and the error says why.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        self.flush();
        match &mut self.sink {
            Sink::Stdout => Ok(()),
            Sink::File(file) => file
                .reopen()
                .map_err(|e| io::Error::new(e.kind(), format!("access log {e}"))),
        }
    }

    /// Adds a line for each entry of `client`, at `time` (the Common Log
    /// Format's `10/Oct/2000:13:55:36 +0000`, from the driver's clock).
    pub(crate) fn record(&mut self, client: IpAddr, entries: Vec<Entry>, time: &str) {
        for entry in &entries {
            self.pending
                .extend_from_slice(line(client, entry, time).as_bytes());
        }
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes the gathered lines.
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&self.pending).and_then(|()| out.flush())
            }
            Sink::File(file) => file.write_all(&self.pending),
        };
        self.pending.clear();
        if let Err(error) = result
            && !FAILURE_REPORTED.swap(true, Ordering::Relaxed)
        {
            log::error!("access log: {error}; lines are being lost (reported once)");
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Makes a value safe inside a quoted log field: quotes and backslashes are
/// escaped, control bytes and non-ASCII become `\xHH` (as nginx does), so a
/// client cannot forge a log line.
/// The Combined Log Format line for `entry`, newline included: one line of
/// printable ASCII, whatever the client sent.
pub(crate) fn line(client: IpAddr, entry: &Entry, time: &str) -> String {
    let bytes = match entry.body_bytes {
        0 => "-".to_string(),
        n => n.to_string(),
    };
    format!(
        "{client} - {} [{time}] \"{}\" {} {bytes} \"{}\" \"{}\"\n",
        // The one unquoted field a client can write: a space in it would
        // shift every field after it for a log reader.
        escape(entry.user.as_deref().unwrap_or("-")).replace(' ', "\\x20"),
        escape(&entry.request_line),
        entry.status.as_u16(),
        escape(entry.referer.as_deref().unwrap_or("-")),
        escape(entry.user_agent.as_deref().unwrap_or("-")),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;

    #[test]
    fn writes_combined_log_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut log = AccessLog::open(&LogTarget::File(path.clone())).unwrap();
        let entry = Entry {
            request_line: "GET /a\"b HTTP/1.1".into(),
            user: Some("z\u{e9} d".into()),
            referer: None,
            user_agent: Some("evil\nagent".into()),
            status: StatusCode::OK,
            body_bytes: 2326,
        };
        log.record(
            "127.0.0.1".parse().unwrap(),
            vec![entry],
            "10/Oct/2000:13:55:36 +0000",
        );
        log.flush();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text,
            "127.0.0.1 - z\\xC3\\xA9\\x20d [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b HTTP/1.1\" 200 2326 \"-\" \"evil\\x0Aagent\"\n"
        );
    }

    #[test]
    fn gathered_lines_are_written_before_they_pass_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut log = AccessLog::open(&LogTarget::File(path.clone())).unwrap();
        let entry = Entry {
            request_line: format!("GET /{} HTTP/1.1", "x".repeat(8000)),
            user: None,
            referer: None,
            user_agent: None,
            status: StatusCode::OK,
            body_bytes: 1,
        };
        let client = "127.0.0.1".parse().unwrap();
        for _ in 0..100 {
            log.record(client, vec![entry.clone()], "10/Oct/2000:13:55:36 +0000");
            assert!(log.pending.len() < FLUSH_AT + 8200, "{}", log.pending.len());
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() > 700_000,
            "written as it went"
        );
    }

    #[test]
    fn escaping_keeps_one_line_per_request() {
        assert_eq!(
            escape("a\"b\\c\r\nd\u{e9}"),
            "a\\\"b\\\\c\\x0D\\x0Ad\\xC3\\xA9"
        );
    }

    #[test]
    fn entries_are_made_when_their_response_has_gone() {
        let mut ledger = Ledger::default();
        let request = head(
            "GET /x HTTP/1.1\r\nHost: a\r\nReferer: http://r/\r\nUser-Agent: t\r\n\
             Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n",
        );
        ledger.answered(1, Some(&request), None, StatusCode::OK);
        ledger.answered(2, None, Some("BREW /pot".into()), StatusCode::BAD_REQUEST);
        assert!(ledger.take().is_empty(), "nothing has left yet");
        let delivered = |exchange, body_bytes, complete| Delivered {
            exchange,
            body_bytes,
            complete,
        };
        ledger.delivered(delivered(1, 10, true));
        ledger.delivered(delivered(2, 3, false));
        let entries = ledger.take();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].request_line, "GET /x HTTP/1.1");
        assert_eq!(entries[0].referer.as_deref(), Some("http://r/"));
        assert_eq!(entries[0].user_agent.as_deref(), Some("t"));
        assert_eq!(entries[0].user.as_deref(), Some("alice"), "alice:secret");
        assert_eq!(entries[1].user, None);
        assert_eq!(entries[0].body_bytes, 10);
        assert_eq!(entries[1].request_line, "BREW /pot");
        assert_eq!(entries[1].status, StatusCode::BAD_REQUEST);
        assert_eq!(
            entries[1].body_bytes, 3,
            "what left of a response cut short"
        );
    }
}
