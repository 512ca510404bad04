//! Reading a request head: finding where it ends, then parsing it strictly.
//!
//! `httparse` is stateless: given a partial head it answers `Status::Partial` and
//! must later be handed the whole head again. Re-parsing on every arriving byte
//! would cost a trickling client quadratic work, so [`HeadScanner`] first looks for
//! the blank line that ends the head, resuming where its last look stopped, and the
//! parser runs once, on a complete head.
//!
//! `httparse` is also lenient where a server must not be (RFC 9112 section 2.2):
//! it accepts bare LF line endings. [`parse`] closes that gap itself.

use std::mem::MaybeUninit;

use super::error::ProtocolError;
use super::limits::{Limits, MAX_HEADERS_CEILING};
use super::request::{Method, RequestHead, Version};
use super::tokens::trim_ows;

/// Finds the end of a request head in a growing buffer.
#[derive(Debug, Default)]
pub(crate) struct HeadScanner {
    /// Bytes before this offset hold no head terminator.
    scanned: usize,
    /// Offset of the `\n` that ends the request line, once seen.
    line_end: Option<usize>,
}

impl HeadScanner {
    /// Looks for the end of the head in `buf` (which only ever grows between calls,
    /// until [`reset`](Self::reset)). Returns the head's length once complete.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<usize>, ProtocolError> {
        let mut found = None;
        let byte_before = |i: usize, back: usize| i.checked_sub(back).and_then(|j| buf.get(j));
        for (i, &byte) in buf.iter().enumerate().skip(self.scanned) {
            if byte != b'\n' {
                // Bytes that cannot be part of a request line are refused as they
                // arrive (a TLS handshake on the plain port, a binary protocol),
                // instead of waiting for a blank line that will never come.
                if self.line_end.is_none() && !fits_request_line(i, byte) {
                    return Err(ProtocolError::Malformed("not an HTTP request line"));
                }
                continue;
            }
            if self.line_end.is_none() {
                self.line_end = Some(i);
            }
            // A blank line ends the head: "\n\r\n", or "\n\n" which `parse` then
            // refuses as a bare LF (rather than waiting for a CRLF that never comes).
            let blank_crlf = byte_before(i, 1) == Some(&b'\r') && byte_before(i, 2) == Some(&b'\n');
            let blank_lf = byte_before(i, 1) == Some(&b'\n');
            if blank_crlf || blank_lf {
                found = Some(i + 1);
                break;
            }
        }
        self.scanned = found.unwrap_or(buf.len());

        // The request line, without its CRLF; while it is incomplete, a trailing
        // CR might still be the start of its CRLF.
        let line_len = match self.line_end {
            Some(lf) => lf - usize::from(byte_before(lf, 1) == Some(&b'\r')),
            None => buf.len() - usize::from(buf.last() == Some(&b'\r')),
        };
        if line_len > limits.max_request_line {
            return Err(ProtocolError::RequestLineTooLong);
        }
        match found {
            Some(head_len) if head_len > limits.max_head_bytes => Err(ProtocolError::HeadTooLarge),
            // Incomplete at the limit already: finishing it can only go over.
            None if buf.len() >= limits.max_head_bytes => Err(ProtocolError::HeadTooLarge),
            _ => Ok(found),
        }
    }
}

/// Whether `byte`, at offset `at` of a request line, can belong there: a method
/// starts with a token character (or a CR of a stray empty line); the rest is
/// visible ASCII, spaces, the CR before LF, or UTF-8 in the target.
fn fits_request_line(at: usize, byte: u8) -> bool {
    if at == 0 {
        byte == b'\r' || (byte.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&byte))
    } else {
        byte == b' ' || byte == b'\r' || byte.is_ascii_graphic() || byte >= 0x80
    }
}

/// Parses a complete head (as found by [`HeadScanner`]) and checks what `httparse`
/// lets through but HTTP/1.1 forbids.
pub(crate) fn parse(head: &[u8], limits: &Limits) -> Result<RequestHead, ProtocolError> {
    if let Some(bare) = head.iter().position(|&b| b == b'\n') {
        // Every line must end in CRLF; a lone LF is how request smuggling starts.
        let all_crlf = head
            .iter()
            .enumerate()
            .skip(bare)
            .filter(|&(_, &b)| b == b'\n')
            .all(|(i, _)| i.checked_sub(1).and_then(|j| head.get(j)) == Some(&b'\r'));
        if !all_crlf {
            return Err(ProtocolError::Malformed("bare LF line ending"));
        }
    }

    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CEILING];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS_CEILING)];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(head, slots) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        Ok(_) => return Err(ProtocolError::Malformed("head does not end where expected")),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(head)),
        Err(e) => return Err(malformed(e)),
    }
    let parsed = RequestHead::from_parsed(head, &request)?;
    check_target(&parsed)?;
    check_host(&parsed)?;
    Ok(parsed)
}

/// `HTTP/2.0` or `HTTP/1.2` in a well-formed request line is a version we do
/// not speak (505); anything else is not a request line at all (400), such as
/// `GET /a b HTTP/1.1`, where httparse stumbles on `b` as the version.
fn version_error(head: &[u8]) -> ProtocolError {
    let line_end = head.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &head[..line_end.unwrap_or(head.len())];
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [_, _, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ProtocolError::UnsupportedVersion
        }
        _ => ProtocolError::Malformed("invalid request line"),
    }
}

fn malformed(error: httparse::Error) -> ProtocolError {
    ProtocolError::Malformed(match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or target",
        _ => "invalid request head",
    })
}

/// RFC 9112 section 3.2: origin-form (`/path`), absolute-form (`http://...`), the
/// asterisk for `OPTIONS`, authority-form for `CONNECT`.
fn check_target(head: &RequestHead) -> Result<(), ProtocolError> {
    let target = head.target();
    let ok = match head.method() {
        Method::Options if target == "*" => true,
        Method::Connect => !target.starts_with('/'),
        _ => {
            target.starts_with('/') || {
                let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
                lower.starts_with("http://") || lower.starts_with("https://")
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::Malformed("invalid request target"))
    }
}

/// RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one Host, and it
/// must be a valid `uri-host [":" port]`; no request may carry two (which one
/// would a proxy in front of us have believed?).
fn check_host(head: &RequestHead) -> Result<(), ProtocolError> {
    let mut hosts = head.headers("host");
    match (hosts.next(), hosts.next(), head.version()) {
        // HTTP/2 heads are parsed as HTTP/1.1 ones (src/h2/request.rs).
        (None, _, Version::Http11 | Version::Http2) => {
            Err(ProtocolError::Malformed("missing Host"))
        }
        (None, _, Version::Http10) => Ok(()),
        (Some(_), Some(_), _) => Err(ProtocolError::Malformed("more than one Host")),
        (Some(value), None, _) => super::target::check_authority(trim_ows(value))
            .map_err(|_| ProtocolError::Malformed("invalid Host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        HeadScanner::default().scan(input, &Limits::default())
    }

    #[test]
    fn finds_the_end_of_a_head() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        assert_eq!(scan_all(head), Ok(Some(head.len() - 4)));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    }

    #[test]
    fn resumes_where_it_stopped() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanner = HeadScanner::default();
        for end in 1..head.len() {
            assert_eq!(scanner.scan(&head[..end], &Limits::default()), Ok(None));
        }
        assert_eq!(scanner.scan(head, &Limits::default()), Ok(Some(head.len())));
    }

    #[test]
    fn garbage_is_refused_before_any_line_ends() {
        let tls_hello = b"\x16\x03\x01\x02\x00\x01";
        assert!(matches!(
            scan_all(tls_hello),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            scan_all(b"GET /\x01"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            scan_all(b"GET\t/"),
            Err(ProtocolError::Malformed(_))
        ));
        assert_eq!(scan_all(b"GET /caf\xc3\xa9 HTTP/1.1\r"), Ok(None));
        assert_eq!(
            scan_all(b"\r"),
            Ok(None),
            "a stray CR may start an empty line"
        );
        // Header lines are checked by httparse once the head is complete.
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nX: \x01"), Ok(None));
    }

    #[test]
    fn a_long_request_line_is_refused_before_it_ends() {
        let limits = Limits {
            max_request_line: 16,
            ..Limits::default()
        };
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.scan(b"GET /0123456789", &limits), Ok(None));
        assert_eq!(
            scanner.scan(b"GET /0123456789abcdef", &limits),
            Err(ProtocolError::RequestLineTooLong)
        );
    }

    #[test]
    fn a_large_head_is_refused_before_it_ends() {
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'x', 60));
        assert_eq!(
            HeadScanner::default().scan(&head, &limits),
            Err(ProtocolError::HeadTooLarge)
        );
    }

    fn parse_str(text: &str) -> Result<RequestHead, ProtocolError> {
        parse(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn parses_a_plain_head() {
        let head = parse_str("GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(head.path(), "/a");
        assert_eq!(head.version(), Version::Http11);
    }

    #[test]
    fn refuses_what_httparse_lets_through() {
        let bare_lf = parse_str("GET / HTTP/1.1\nHost: x\n\n");
        assert_eq!(
            bare_lf.unwrap_err(),
            ProtocolError::Malformed("bare LF line ending")
        );
        let mixed = parse_str("GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n");
        assert!(matches!(mixed, Err(ProtocolError::Malformed(_))));
    }

    #[test]
    fn refuses_obs_fold_and_space_before_colon() {
        let fold = parse_str("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n");
        assert!(matches!(fold, Err(ProtocolError::Malformed(_))), "{fold:?}");
        let space = parse_str("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
        assert!(
            matches!(space, Err(ProtocolError::Malformed(_))),
            "{space:?}"
        );
    }

    #[test]
    fn refuses_control_characters_in_fields() {
        let nul = parse_str("GET / HTTP/1.1\r\nHost: x\r\nA: b\0c\r\n\r\n");
        assert!(matches!(nul, Err(ProtocolError::Malformed(_))), "{nul:?}");
        let esc = parse_str("GET / HTTP/1.1\r\nHost: x\r\nA\x1b: b\r\n\r\n");
        assert!(matches!(esc, Err(ProtocolError::Malformed(_))), "{esc:?}");
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_str("GET / HTTP/2.0\r\nHost: x\r\n\r\n").unwrap_err(),
            ProtocolError::UnsupportedVersion
        );
        assert_eq!(
            parse_str("GET / HTTP/1.2\r\nHost: x\r\n\r\n").unwrap_err(),
            ProtocolError::UnsupportedVersion
        );
        assert!(matches!(
            parse_str("GET / HTTX/1.1\r\nHost: x\r\n\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            parse_str("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(parse_str("GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            parse_str("GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            ProtocolError::Malformed("missing Host")
        );
        assert_eq!(
            parse_str("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap_err(),
            ProtocolError::Malformed("more than one Host")
        );
        assert_eq!(
            parse_str("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n").unwrap_err(),
            ProtocolError::Malformed("more than one Host")
        );
        for bad in [
            "a b",
            "a/b",
            "user@a",
            "a:port",
            "[::1",
            "r\u{e9}sum\u{e9}.org",
        ] {
            assert_eq!(
                parse_str(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n")).unwrap_err(),
                ProtocolError::Malformed("invalid Host"),
                "{bad}"
            );
        }
        for good in ["example.org:8080", "[::1]:4221", "", "127.0.0.1"] {
            assert!(
                parse_str(&format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n")).is_ok(),
                "{good}"
            );
        }
        assert!(
            parse_str("GET / HTTP/1.0\r\n\r\n").is_ok(),
            "1.0 needs no Host"
        );
    }

    #[test]
    fn targets_with_utf8_or_bad_escapes() {
        assert!(
            parse_str("GET /r\u{e9}sum\u{e9}.pdf HTTP/1.1\r\nHost: example.org\r\n\r\n").is_ok()
        );
        assert!(
            parse(
                b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
                &Limits::default()
            )
            .is_err()
        );
        for bad in ["/100%.txt", "/%zz", "http://a b/"] {
            assert!(
                matches!(
                    parse_str(&format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n")),
                    Err(ProtocolError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn targets() {
        assert!(parse_str("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(parse_str("GET * HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
        assert!(parse_str("GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(parse_str("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
    }

    #[test]
    fn too_many_fields() {
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse(head, &limits).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
    }
}
