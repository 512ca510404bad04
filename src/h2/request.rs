//! A HEADERS block's fields, checked by RFC 9113 section 8 and made into the
//! same [`RequestHead`] the HTTP/1.1 core yields, so the application cannot
//! tell the two apart (but by its version, for the access log).
//!
//! The fields come one at a time from the HPACK decoder. What the RFC calls
//! malformed (upper-case names, pseudo-fields out of place, repeated or
//! unknown, connection-specific fields, CR, LF or NUL in a value) is a stream
//! error of type PROTOCOL_ERROR; what is too large is answered `431`, as for
//! HTTP/1.1. The rest is written as an HTTP/1.1 head (`:method :path
//! HTTP/1.1`, `:authority` as `Host`, cookie crumbs joined with `; `, as
//! section 8.2.3 says) and parsed by the very parser HTTP/1.1 requests go
//! through, so every check of the target, the Host and the fields is the same.

use crate::http::{Limits, ProtocolError, RequestHead, Version, expectation, parse_head};

/// What the RFC counts for a field in the header list's size (section 6.5.2).
const FIELD_OVERHEAD: usize = 32;

/// Why a block is not a request the application may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Malformed: the stream is reset with PROTOCOL_ERROR.
    Malformed(&'static str),
    /// Well formed, but refused as HTTP/1.1 would refuse it (with its status).
    Refused(ProtocolError),
}

/// The fields of one block, gathered as they are decoded.
#[derive(Debug, Default)]
pub(super) struct Collector {
    /// A trailer block (after DATA): fields are checked and dropped.
    trailers: bool,
    method: Option<Vec<u8>>,
    scheme: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    /// The regular fields, as HTTP/1.1 writes them.
    fields: Vec<u8>,
    cookie: Vec<u8>,
    count: usize,
    /// The header list's size, as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
    list_size: usize,
    regular_seen: bool,
    malformed: Option<&'static str>,
    too_large: bool,
    content_length: Option<u64>,
}

/// A request, as the application and the stream need it.
#[derive(Debug)]
pub(super) struct Request {
    pub head: RequestHead,
    /// What its DATA frames must add up to, when it said.
    pub content_length: Option<u64>,
}

impl Collector {
    pub(super) fn for_request() -> Collector {
        Collector::default()
    }

    pub(super) fn for_trailers() -> Collector {
        Collector {
            trailers: true,
            ..Collector::default()
        }
    }

    /// Takes one decoded field in. Nothing is kept past the header list's
    /// bound, but every field is still looked at, so that a malformed one is
    /// found wherever it is.
    pub(super) fn field(&mut self, name: &[u8], value: &[u8], limits: &Limits) {
        if self.malformed.is_some() {
            return;
        }
        if let Err(why) = self.check(name, value) {
            self.malformed = Some(why);
            return;
        }
        self.list_size += name.len() + value.len() + FIELD_OVERHEAD;
        self.count += 1;
        if self.list_size > limits.max_head_bytes || self.count > limits.max_headers {
            self.too_large = true;
        }
        if self.too_large || self.trailers {
            return;
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            let slot = match pseudo {
                b"method" => &mut self.method,
                b"scheme" => &mut self.scheme,
                b"authority" => &mut self.authority,
                b"path" => &mut self.path,
                _ => return,
            };
            *slot = Some(value.to_vec());
            return;
        }
        match name {
            b"cookie" => {
                if !self.cookie.is_empty() {
                    self.cookie.extend_from_slice(b"; ");
                }
                self.cookie.extend_from_slice(value);
                return;
            }
            // Section 8.3.1: `:authority` stands for Host; a Host that
            // says the same is dropped, one that differs is kept, and the
            // parser refuses the two Hosts as it would in HTTP/1.1.
            b"host" if self.authority.as_deref() == Some(value) => return,
            _ => {}
        }
        self.fields.extend_from_slice(name);
        self.fields.extend_from_slice(b": ");
        self.fields.extend_from_slice(value);
        self.fields.extend_from_slice(b"\r\n");
    }

    /// The rules of sections 8.2 and 8.3 for one field.
    fn check(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        if name.is_empty() {
            return Err("an empty field name");
        }
        if value.iter().any(|&b| matches!(b, b'\0' | b'\r' | b'\n')) {
            return Err("CR, LF or NUL in a field value");
        }
        let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        if blank(value.first()) || blank(value.last()) {
            return Err("white space around a field value");
        }
        // Section 8.3.1: ":authority" and "host", if present, "MUST NOT be empty".
        if value.is_empty() && matches!(name, b":authority" | b"host") {
            return Err("an empty :authority or host");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.trailers {
                return Err("a pseudo-header field in trailers");
            }
            if self.regular_seen {
                return Err("a pseudo-header field after a regular one");
            }
            let seen = match pseudo {
                b"method" => self.method.is_some(),
                b"scheme" => self.scheme.is_some(),
                b"authority" => self.authority.is_some(),
                b"path" => self.path.is_some(),
                _ => return Err("an unknown or response pseudo-header field"),
            };
            if seen {
                return Err("a pseudo-header field repeated");
            }
            return Ok(());
        }
        self.regular_seen = true;
        if !name.iter().all(|&b| is_lower_token(b)) {
            return Err("a field name with upper case or not a token");
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => return Err("a connection-specific field"),
            b"te" if value != b"trailers" => return Err("TE other than trailers"),
            b"content-length" => {
                let length = std::str::from_utf8(value)
                    .ok()
                    .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or("a content-length that is not a number")?;
                if self.content_length.is_some_and(|earlier| earlier != length) {
                    return Err("two content-lengths");
                }
                self.content_length = Some(length);
            }
            _ => {}
        }
        Ok(())
    }

    /// A trailer block's verdict: only malformed ones matter.
    pub(super) fn finish_trailers(self) -> Result<(), &'static str> {
        match self.malformed {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Whether the block asks for HEAD: a refusal of it has no body either.
    pub(super) fn is_head(&self) -> bool {
        self.method.as_deref() == Some(b"HEAD")
    }

    /// The request the block makes, or why it makes none.
    pub(super) fn finish(self, limits: &Limits) -> Result<Request, Refusal> {
        if let Some(why) = self.malformed {
            return Err(Refusal::Malformed(why));
        }
        if self.too_large {
            return Err(Refusal::Refused(ProtocolError::HeadTooLarge));
        }
        let method = self.method.ok_or(Refusal::Malformed("no :method"))?;
        let connect = method == b"CONNECT";
        let target = if connect {
            // Section 8.5: CONNECT names only an authority. Handed on as
            // HTTP/1.1 would have it; the application refuses it.
            if self.scheme.is_some() || self.path.is_some() {
                return Err(Refusal::Malformed("CONNECT with :scheme or :path"));
            }
            self.authority
                .clone()
                .ok_or(Refusal::Malformed("CONNECT without :authority"))?
        } else {
            if self.scheme.is_none() {
                return Err(Refusal::Malformed("no :scheme"));
            }
            match self.path {
                Some(path) if !path.is_empty() => path,
                _ => return Err(Refusal::Malformed("no :path, or an empty one")),
            }
        };
        let mut raw = Vec::with_capacity(
            method.len() + target.len() + self.fields.len() + self.cookie.len() + 64,
        );
        raw.extend_from_slice(&method);
        raw.push(b' ');
        raw.extend_from_slice(&target);
        raw.extend_from_slice(b" HTTP/1.1\r\n");
        if let Some(authority) = self.authority.as_deref().filter(|a| !a.is_empty()) {
            raw.extend_from_slice(b"host: ");
            raw.extend_from_slice(authority);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(&self.fields);
        if !self.cookie.is_empty() {
            raw.extend_from_slice(b"cookie: ");
            raw.extend_from_slice(&self.cookie);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        let mut head = parse_head(&raw, limits).map_err(Refusal::Refused)?;
        head.set_version(Version::Http2);
        // An expectation other than 100-continue is 417, as in HTTP/1.1.
        expectation(&head).map_err(Refusal::Refused)?;
        Ok(Request {
            head,
            content_length: self.content_length,
        })
    }
}

/// A byte of a field name as HTTP/2 allows it: a token character, not upper case.
fn is_lower_token(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn collect(fields: &[(&str, &str)]) -> Result<Request, Refusal> {
        let limits = Limits::default();
        let mut collector = Collector::for_request();
        for (name, value) in fields {
            collector.field(name.as_bytes(), value.as_bytes(), &limits);
        }
        collector.finish(&limits)
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", "/a/b?c=d"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut fields = BASE.to_vec();
        fields.extend_from_slice(extra);
        fields
    }

    #[test]
    fn a_request_becomes_the_head_http_1_1_would_give() {
        let request = collect(&with(&[
            ("cookie", "a=1"),
            ("user-agent", "curl/8"),
            ("cookie", "b=2"),
            ("content-length", "5"),
        ]))
        .expect("a request");
        let head = request.head;
        assert_eq!(head.method(), Method::Get);
        assert_eq!(head.path(), "/a/b");
        assert_eq!(head.query(), Some("c=d"));
        assert_eq!(head.header_str("host"), Some("example.com"));
        assert_eq!(head.header_str("cookie"), Some("a=1; b=2"));
        assert_eq!(head.header_str("user-agent"), Some("curl/8"));
        assert_eq!(head.version(), Version::Http2);
        assert_eq!(head.request_line(), "GET /a/b?c=d HTTP/2.0");
        assert_eq!(request.content_length, Some(5));
    }

    #[test]
    fn malformed_blocks_are_refused_as_section_8_says() {
        let malformed = |fields: &[(&str, &str)]| {
            assert!(
                matches!(collect(fields), Err(Refusal::Malformed(_))),
                "{fields:?}"
            );
        };
        malformed(&with(&[("User-Agent", "x")]));
        malformed(&with(&[("connection", "keep-alive")]));
        malformed(&with(&[("transfer-encoding", "chunked")]));
        malformed(&with(&[("te", "gzip")]));
        malformed(&with(&[("x", "a\r\nb")]));
        malformed(&with(&[("content-length", "1"), ("content-length", "2")]));
        malformed(&with(&[("content-length", "-1")]));
        malformed(&with(&[(":status", "200")]));
        malformed(&with(&[(":path", "/again")]));
        malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "")]);
        malformed(&[(":method", "GET"), (":path", "/")]);
        malformed(&[(":scheme", "http"), (":path", "/")]);
        malformed(&[("accept", "*/*"), (":method", "GET")]);
        // Section 8.2.1: no white space around a value; 8.3.1: no empty
        // :authority or host.
        malformed(&with(&[("accept", "*/* ")]));
        malformed(&with(&[("accept", "\t*/*")]));
        malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/ ")]);
        malformed(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", ""),
            (":path", "/"),
        ]);
        malformed(&with(&[("host", "")]));
        assert!(collect(&with(&[("te", "trailers")])).is_ok());
        assert!(collect(&with(&[("accept", "a, b")])).is_ok());
    }

    /// RFC 9110 section 10.1.1 holds over HTTP/2 as over HTTP/1.1.
    #[test]
    fn an_expectation_other_than_continue_is_417() {
        assert!(matches!(
            collect(&with(&[("expect", "gzip")])),
            Err(Refusal::Refused(ProtocolError::UnsupportedExpectation))
        ));
        assert!(collect(&with(&[("expect", "100-continue")])).is_ok());
    }

    #[test]
    fn a_list_over_the_bound_is_431_and_two_hosts_are_400() {
        let long = "v".repeat(40 * 1024);
        let limits = Limits::default();
        let mut collector = Collector::for_request();
        for (name, value) in BASE {
            collector.field(name.as_bytes(), value.as_bytes(), &limits);
        }
        collector.field(b"x-big", long.as_bytes(), &limits);
        assert_eq!(
            collector.finish(&limits).map(|_| ()),
            Err(Refusal::Refused(ProtocolError::HeadTooLarge))
        );
        assert!(matches!(
            collect(&with(&[("host", "other.example")])),
            Err(Refusal::Refused(ProtocolError::Malformed(_)))
        ));
        assert!(collect(&with(&[("host", "example.com")])).is_ok());
    }

    #[test]
    fn trailers_may_not_carry_pseudo_fields() {
        let limits = Limits::default();
        let mut trailers = Collector::for_trailers();
        trailers.field(b"x-checksum", b"abc", &limits);
        assert_eq!(trailers.finish_trailers(), Ok(()));
        let mut trailers = Collector::for_trailers();
        trailers.field(b":path", b"/", &limits);
        assert!(trailers.finish_trailers().is_err());
    }
}
