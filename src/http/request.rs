//! A parsed request head, owned.
//!
//! The head is copied once out of the connection's input buffer (one allocation for
//! its bytes, one for the field index) so that the buffer can keep receiving while
//! the application looks at the request. Names and values are ranges into those bytes.

use std::ops::Range;

/// The request methods oneloop recognises. Anything else is `Other`, which the
/// application answers with 501 Not Implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
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
    pub fn from_token(token: &str) -> Method {
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

/// The two HTTP versions a request line may carry (anything else is refused earlier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
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
pub struct RequestHead {
    raw: Box<[u8]>,
    method: Method,
    method_token: Range<usize>,
    target: Range<usize>,
    version: Version,
    fields: Vec<Field>,
}

impl RequestHead {
    /// Builds a head from the bytes `httparse` parsed. `raw` must be the exact slice
    /// the parsed strings borrow from.
    pub(crate) fn from_parsed(raw: &[u8], parsed: &httparse::Request<'_, '_>) -> Option<Self> {
        let base = raw.as_ptr() as usize;
        let range_of = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        let method_str = parsed.method?;
        let version = match parsed.version? {
            0 => Version::Http10,
            _ => Version::Http11,
        };
        let fields = parsed
            .headers
            .iter()
            .map(|h| Field {
                name: range_of(h.name.as_bytes()),
                value: range_of(h.value),
            })
            .collect();
        Some(RequestHead {
            raw: raw.into(),
            method: Method::from_token(method_str),
            method_token: range_of(method_str.as_bytes()),
            target: range_of(parsed.path?.as_bytes()),
            version,
            fields,
        })
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The method exactly as the client sent it.
    pub fn method_str(&self) -> &str {
        self.str_at(&self.method_token)
    }

    /// The request-target exactly as received: origin-form (`/a?b`), absolute-form
    /// (`http://host/a`), or `*`.
    pub fn target(&self) -> &str {
        self.str_at(&self.target)
    }

    /// The path of the target, without the query, still percent-encoded.
    /// For absolute-form targets the scheme and authority are dropped.
    pub fn path(&self) -> &str {
        let target = self.target();
        let without_authority = strip_scheme_and_authority(target);
        match without_authority.find('?') {
            Some(q) => &without_authority[..q],
            None => without_authority,
        }
    }

    /// The query of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        let target = self.target();
        target.find('?').map(|q| &target[q + 1..])
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The first value of a header field; names compare case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| self.raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &self.raw[f.value.clone()])
    }

    /// The first value of a header field as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of a header field, in the order received.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(move |f| &self.raw[f.value.clone()])
    }

    /// The request line as received, for the access log.
    pub fn request_line(&self) -> String {
        format!(
            "{} {} {}",
            self.method_str(),
            self.target(),
            self.version.as_str()
        )
    }

    fn str_at(&self, range: &Range<usize>) -> &str {
        // httparse only hands out method, target and names that it checked to be
        // visible ASCII or UTF-8, so this never falls back in practice.
        std::str::from_utf8(&self.raw[range.clone()]).unwrap_or("")
    }
}

/// `http://host:80/a/b?c` -> `/a/b?c`; origin-form targets come back unchanged.
fn strip_scheme_and_authority(target: &str) -> &str {
    let lower_starts = |prefix: &str| {
        target.len() >= prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        // `http://host?q` has an empty path, which means `/`.
        _ => "/",
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
        RequestHead::from_parsed(text.as_bytes(), &req).expect("test head has all parts")
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
        assert_eq!(strip_scheme_and_authority("http://h:8/a/b?c"), "/a/b?c");
        assert_eq!(strip_scheme_and_authority("HTTP://h"), "/");
        assert_eq!(strip_scheme_and_authority("http://h?q"), "/");
        assert_eq!(strip_scheme_and_authority("/plain"), "/plain");
        let h = head("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.path(), "/x");
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(Method::from_token("BREW"), Method::Other);
        assert_eq!(Method::from_token("get"), Method::Other);
    }
}
