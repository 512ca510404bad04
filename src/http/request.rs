//! A parsed request head, owned.
//!
//! The head is copied once out of the connection's input buffer (one allocation for
//! its bytes, one for the field index) so that the buffer can keep receiving while
//! the application looks at the request. Names and values are ranges into those bytes.

use std::ops::Range;

use super::error::ProtocolError;

/// The request methods oneloop recognises. Anything else is `Other`, which the
/// application answers with 501 Not Implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Patch,
    Connect,
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 9110 section 9.1): `get` is not `GET`.
    pub(crate) fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// The two HTTP versions a request line may carry (anything else is refused
/// earlier), and HTTP/2, whose requests become heads like theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    Http10,
    Http11,
    Http2,
}

impl Version {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}

/// Where a header field's name and value sit in the head's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    name: Range<usize>,
    value: Range<usize>,
}

/// A request line and its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    raw: Box<[u8]>,
    method: Method,
    method_token: Range<usize>,
    target: Range<usize>,
    /// The target's path and query, as ranges of `raw` (see [`target`](super::target)).
    path: Range<usize>,
    query: Option<Range<usize>>,
    version: Version,
    fields: Vec<Field>,
}

impl RequestHead {
    /// Builds a head from the bytes `httparse` parsed. `raw` must be the exact slice
    /// the parsed strings borrow from. Refuses a target whose path or authority
    /// is malformed (see [`target`](super::target)).
    pub(crate) fn from_parsed(
        raw: &[u8],
        parsed: &httparse::Request<'_, '_>,
    ) -> Result<Self, ProtocolError> {
        let incomplete = ProtocolError::Malformed("incomplete request line");
        let base = raw.as_ptr() as usize;
        let range_of = |part: &[u8]| {
            let start = (part.as_ptr() as usize).wrapping_sub(base);
            start..start + part.len()
        };
        let method_str = parsed.method.ok_or(incomplete)?;
        let version = match parsed.version.ok_or(incomplete)? {
            0 => Version::Http10,
            _ => Version::Http11,
        };
        let target_str = parsed.path.ok_or(incomplete)?;
        let target = range_of(target_str.as_bytes());
        let parts = super::target::split(target_str.as_bytes())?;
        let shift = |r: Range<usize>| target.start + r.start..target.start + r.end;
        let fields = parsed
            .headers
            .iter()
            .map(|h| Field {
                name: range_of(h.name.as_bytes()),
                value: range_of(h.value),
            })
            .collect();
        let head = RequestHead {
            raw: raw.into(),
            method: Method::from_token(method_str),
            method_token: range_of(method_str.as_bytes()),
            path: shift(parts.path),
            query: parts.query.map(shift),
            target,
            version,
            fields,
        };
        // Every range must lie inside `raw`: httparse borrows only from it.
        let inside = |r: &Range<usize>| r.start <= r.end && r.end <= head.raw.len();
        let all_inside = [&head.method_token, &head.target, &head.path]
            .into_iter()
            .chain(head.query.as_ref())
            .chain(head.fields.iter().flat_map(|f| [&f.name, &f.value]))
            .all(inside);
        if all_inside {
            Ok(head)
        } else {
            Err(incomplete)
        }
    }

    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// The method exactly as the client sent it.
    pub(crate) fn method_str(&self) -> &str {
        self.str_at(&self.method_token)
    }

    /// The request-target exactly as received: origin-form (`/a?b`), absolute-form
    /// (`http://host/a`), or `*`.
    pub(crate) fn target(&self) -> &str {
        self.str_at(&self.target)
    }

    /// The path of the target, without the query, still percent-encoded, its
    /// escapes known to be well formed. For absolute-form targets the scheme and
    /// authority are dropped (and an empty path is `/`).
    pub(crate) fn path(&self) -> &str {
        match self.str_at(&self.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query of the target (after `?`), if any, as received.
    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|range| self.str_at(range))
    }

    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// The head of an HTTP/2 request, which was parsed as HTTP/1.1's.
    pub(crate) fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The first value of a header field; names compare case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| self.bytes_at(&f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| self.bytes_at(&f.value))
    }

    /// The first value of a header field as text, if it is valid UTF-8.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of a header field, in the order received.
    pub(crate) fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.bytes_at(&f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |f| self.bytes_at(&f.value))
    }

    /// The request line as received, for the access log.
    pub(crate) fn request_line(&self) -> String {
        format!(
            "{} {} {}",
            self.method_str(),
            self.target(),
            self.version.as_str()
        )
    }

    fn bytes_at(&self, range: &Range<usize>) -> &[u8] {
        self.raw.get(range.clone()).unwrap_or_default()
    }

    fn str_at(&self, range: &Range<usize>) -> &str {
        // httparse only hands out a method, a target and names that it checked
        // to be visible ASCII or UTF-8, and every range was cut at an ASCII
        // byte, so this never falls back in practice.
        std::str::from_utf8(self.bytes_at(range)).unwrap_or("")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses a complete head for tests elsewhere in the crate.
    pub(crate) fn head(text: &str) -> RequestHead {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(text.as_bytes()).expect("test head parses");
        assert!(status.is_complete(), "test head is complete");
        RequestHead::from_parsed(text.as_bytes(), &req).expect("test head is valid")
    }

    #[test]
    fn exposes_line_and_fields() {
        let h = head("GET /echo/abc?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\n\r\n");
        assert_eq!(h.method(), Method::Get);
        assert_eq!(h.target(), "/echo/abc?x=1");
        assert_eq!(h.path(), "/echo/abc");
        assert_eq!(h.query(), Some("x=1"));
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.header("user-agent"), Some(&b"curl/8"[..]));
        assert_eq!(h.header("USER-AGENT"), Some(&b"curl/8"[..]));
        assert_eq!(h.header("accept"), None);
        assert_eq!(h.request_line(), "GET /echo/abc?x=1 HTTP/1.1");
    }

    #[test]
    fn repeated_fields_keep_their_order() {
        let h = head("GET / HTTP/1.1\r\nA: 1\r\nB: x\r\na: 2\r\n\r\n");
        let all: Vec<&[u8]> = h.headers("A").collect();
        assert_eq!(all, vec![&b"1"[..], &b"2"[..]]);
    }

    #[test]
    fn absolute_form_targets_map_to_their_path() {
        let h = head("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.path(), "/x");
        assert_eq!(h.query(), Some("y"));
        let h = head("GET HTTP://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.path(), "/");
        assert_eq!(h.query(), Some("q"));
    }

    #[test]
    fn utf8_targets_keep_every_character() {
        let h = head("GET /r\u{e9}sum\u{e9}.pdf?\u{e9}=1 HTTP/1.1\r\nHost: example.org\r\n\r\n");
        assert_eq!(h.path(), "/r\u{e9}sum\u{e9}.pdf");
        assert_eq!(h.query(), Some("\u{e9}=1"));
        assert_eq!(
            h.request_line(),
            "GET /r\u{e9}sum\u{e9}.pdf?\u{e9}=1 HTTP/1.1"
        );
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(Method::from_token("BREW"), Method::Other);
        assert_eq!(Method::from_token("get"), Method::Other);
    }
}
