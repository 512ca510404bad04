//! The access log: one line per response in the Combined Log Format,
//!
//! ```text
//! 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a.gif HTTP/1.1" 200 2326 "http://ref/" "curl/8.0"
//! ```
//!
//! written when the response has left (so the byte count is what was really
//! sent, a response cut short included). Lines are gathered in memory and
//! written once per loop turn, so the log never costs the loop a system call per
//! request. Times are UTC. A failing log (full disk, closed pipe) is reported
//! once and never stops the serving.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogTarget;
use crate::http::conn::Delivery;
use crate::timefmt::Civil;

/// Gathered lines are written early once they pass this size.
const FLUSH_AT: usize = 64 * 1024;

/// Whether a failure has been reported, by any access log of the process (each
/// worker loop has its own).
static FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);

enum Sink {
    Stdout,
    File(File),
}

pub struct AccessLog {
    sink: Sink,
    pending: Vec<u8>,
    /// The formatted time, and the second it is for.
    time: (u64, String),
}

impl AccessLog {
    pub fn open(target: &LogTarget) -> io::Result<AccessLog> {
        let sink = match target {
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::File(path) => Sink::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("access log {}: {e}", path.display()))
                    })?,
            ),
        };
        Ok(AccessLog {
            sink,
            pending: Vec::with_capacity(4096),
            time: (u64::MAX, String::new()),
        })
    }

    /// Adds a line for each delivered response from `client`.
    pub fn record(&mut self, client: IpAddr, deliveries: Vec<Delivery>, now: SystemTime) {
        for delivery in deliveries {
            let Some(exchange) = delivery.record else {
                continue;
            };
            let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if self.time.0 != second {
                self.time = (second, Civil::from_system_time(now).common_log());
            }
            let bytes = match delivery.body_bytes {
                0 => "-".to_string(),
                n => n.to_string(),
            };
            let line = format!(
                "{client} - - [{}] \"{}\" {} {bytes} \"{}\" \"{}\"\n",
                self.time.1,
                escape(&exchange.request_line),
                exchange.status.as_u16(),
                escape(exchange.referer.as_deref().unwrap_or("-")),
                escape(exchange.user_agent.as_deref().unwrap_or("-")),
            );
            self.pending.extend_from_slice(line.as_bytes());
        }
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes the gathered lines.
    pub fn flush(&mut self) {
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
    use crate::http::StatusCode;
    use crate::http::conn::ExchangeRecord;
    use crate::http::output::Delivered;
    use std::time::Duration;

    #[test]
    fn writes_combined_log_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut log = AccessLog::open(&LogTarget::File(path.clone())).unwrap();
        let delivery = Delivered {
            record: Some(Box::new(ExchangeRecord {
                request_line: "GET /a\"b HTTP/1.1".into(),
                referer: None,
                user_agent: Some("evil\nagent".into()),
                status: StatusCode::OK,
            })),
            body_bytes: 2326,
            complete: true,
        };
        let t = UNIX_EPOCH + Duration::from_secs(971_186_136);
        log.record("127.0.0.1".parse().unwrap(), vec![delivery], t);
        log.flush();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text,
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b HTTP/1.1\" 200 2326 \"-\" \"evil\\x0Aagent\"\n"
        );
    }

    #[test]
    fn escaping_keeps_one_line_per_request() {
        assert_eq!(
            escape("a\"b\\c\r\nd\u{e9}"),
            "a\\\"b\\\\c\\x0D\\x0Ad\\xC3\\xA9"
        );
    }
}
