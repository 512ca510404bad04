//! How an access-log [`Entry`] is written: one line per response in one of
//! three formats (`--access-log-format`), each a single line whatever the
//! client sent, so that nobody can forge a line.
//!
//! ```text
//! combined: 127.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] "GET /a.gif HTTP/1.1" 200 2326 "http://ref/" "curl/8.0" 1234
//! vhost:    example.org:8080 127.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] "GET /a.gif HTTP/1.1" 200 2326 "http://ref/" "curl/8.0" 1234
//! json:     {"time":"2000-10-10T13:55:36Z","host":"example.org:8080","site":"example.org",...}
//! ```
//!
//! The text formats are the Combined Log Format (and Apache's
//! `vhost_combined`, the `Host` first) with one field appended: the
//! request's duration in microseconds, as Apache's `%D` (nginx's
//! `$request_time` is the same measure in seconds). Log readers that know
//! the combined format read the first fields and leave the last alone.
//!
//! The duration runs from when the request's head began to be read (the
//! driver's reading of the clock for the turn that took up its first byte;
//! for a pipelined request, the one in which the request before it made
//! way) to when the last byte of the response was handed to the socket, or
//! the response was cut short (the clock read then). So a slow client, or a
//! large file, shows in it, as in nginx's.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Entry, LogTime};

/// `--access-log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The Combined Log Format, and the duration in microseconds.
    #[default]
    Combined,
    /// The same with the request's host (and port, if it named one) first,
    /// as Apache's vhost_combined: for several sites in one log.
    Vhost,
    /// One JSON object per line (see docs/configuration.md for the fields).
    Json,
}

/// The line for `entry` from `client`, newline included.
pub(crate) fn line(format: Format, client: IpAddr, entry: &Entry, time: LogTime<'_>) -> String {
    match format {
        Format::Combined => text_line(None, client, entry, time.common),
        Format::Vhost => {
            let host = entry.host.as_deref().map_or_else(|| "-".into(), unquoted);
            text_line(Some(&host), client, entry, time.common)
        }
        Format::Json => json_line(client, entry, time.rfc3339),
    }
}

/// A combined line, after `first` when there is one: printable ASCII only.
fn text_line(first: Option<&str>, client: IpAddr, entry: &Entry, time: &str) -> String {
    let bytes = match entry.body_bytes {
        0 => "-".to_string(),
        n => n.to_string(),
    };
    let mut out = String::with_capacity(160);
    if let Some(first) = first {
        out.push_str(first);
        out.push(' ');
    }
    let _ = writeln!(
        out,
        "{client} - {} [{time}] \"{}\" {} {bytes} \"{}\" \"{}\" {}",
        // The one unquoted field a client can write: a space in it would
        // shift every field after it for a log reader.
        unquoted(entry.user.as_deref().unwrap_or("-")),
        escape(&entry.request_line),
        entry.status.as_u16(),
        escape(entry.referer.as_deref().unwrap_or("-")),
        escape(entry.user_agent.as_deref().unwrap_or("-")),
        entry.duration_us,
    );
    out
}

/// A value for an unquoted field: escaped, and its spaces too.
fn unquoted(text: &str) -> String {
    escape(text).replace(' ', "\\x20")
}

/// Makes a value safe inside a quoted text field: quotes and backslashes
/// are escaped, control bytes and non-ASCII become `\xHH` (as nginx does).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02X}");
            }
        }
    }
    out
}

/// One JSON object. Absent values are `null`; the fields a client writes
/// were made text on the way in, a byte that was not UTF-8 becoming U+FFFD,
/// so every line is valid UTF-8 and valid JSON.
fn json_line(client: IpAddr, entry: &Entry, time: &str) -> String {
    let request = entry.request.as_ref();
    let mut out = String::with_capacity(320);
    out.push('{');
    field(&mut out, "time", Some(time));
    field(&mut out, "host", entry.host.as_deref());
    // Which site answered: with several in one log, what `host` alone does
    // not say (a name the site matched by wildcard, or the default site).
    field(&mut out, "site", entry.site.as_deref());
    let scheme = match entry.tls {
        Some(_) => "https",
        None => "http",
    };
    field(&mut out, "scheme", Some(scheme));
    field(&mut out, "method", request.map(|r| r.method.as_str()));
    field(&mut out, "path", request.map(|r| r.path.as_str()));
    field(&mut out, "query", request.and_then(|r| r.query.as_deref()));
    field(&mut out, "protocol", request.map(|r| r.protocol));
    field(&mut out, "request", Some(&entry.request_line));
    number(&mut out, "status", u64::from(entry.status.as_u16()));
    number(&mut out, "bytes", entry.body_bytes);
    number(&mut out, "duration_us", entry.duration_us);
    field(&mut out, "client", Some(&client.to_string()));
    field(&mut out, "user", entry.user.as_deref());
    field(&mut out, "referer", entry.referer.as_deref());
    field(&mut out, "user_agent", entry.user_agent.as_deref());
    field(&mut out, "tls", entry.tls);
    out.pop(); // the last comma
    out.push_str("}\n");
    out
}

fn field(out: &mut String, name: &str, value: Option<&str>) {
    let _ = write!(out, "\"{name}\":");
    match value {
        Some(value) => json_string(out, value),
        None => out.push_str("null"),
    }
    out.push(',');
}

fn number(out: &mut String, name: &str, value: u64) {
    let _ = write!(out, "\"{name}\":{value},");
}

/// `text` as a JSON string (RFC 8259 section 7): quotes, backslashes and
/// every control character escaped (DEL and the C1 controls too, which JSON
/// allows raw, so that a terminal showing the log obeys none), the rest as
/// it is.
pub(crate) fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let mut out = String::new();
        json_string(&mut out, text);
        out
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json("plain"), "\"plain\"");
        assert_eq!(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json("a\r\n\tb"), "\"a\\r\\n\\tb\"");
        assert_eq!(
            json("\u{0}\u{1f}\u{7f}\u{9b}"),
            "\"\\u0000\\u001f\\u007f\\u009b\""
        );
        assert_eq!(
            json("r\u{e9}sum\u{e9} \u{fffd}"),
            "\"r\u{e9}sum\u{e9} \u{fffd}\""
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
