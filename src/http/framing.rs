//! What a request head says about the message around it: how its body is framed,
//! whether the connection persists after it, whether the client waits for
//! `100 Continue`.
//!
//! This is where request smuggling is stopped (RFC 9112 section 6.3): a request
//! whose length two parties could read differently is refused and the connection
//! closed, never guessed at.

use super::error::ProtocolError;
use super::request::{RequestHead, Version};
use super::tokens::{contains_token, list_elements};

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding, or `Content-Length: 0`).
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The facts about one request that the connection acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MessageSemantics {
    pub framing: BodyFraming,
    /// RFC 9112 section 9.3: whether the client wants the connection kept open.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expects_continue: bool,
    pub version: Version,
    /// A HEAD request: the response carries GET's headers and no content.
    pub is_head: bool,
}

/// Reads framing, persistence and expectations from `head`, refusing any request
/// whose length is ambiguous or that asks for something we do not do.
pub(crate) fn semantics(
    head: &RequestHead,
    max_body: u64,
) -> Result<MessageSemantics, ProtocolError> {
    let version = head.version();
    let framing = body_framing(head, max_body)?;
    let expects_continue = expectation(head)? && framing != BodyFraming::None;
    Ok(MessageSemantics {
        framing,
        keep_alive: wants_keep_alive(head),
        expects_continue,
        version,
        is_head: head.method() == super::request::Method::Head,
    })
}

fn body_framing(head: &RequestHead, max_body: u64) -> Result<BodyFraming, ProtocolError> {
    let has_transfer_encoding = head.header("transfer-encoding").is_some();
    let mut lengths = head.headers("content-length");
    let length = lengths.next();

    if has_transfer_encoding {
        if length.is_some() {
            // Which one would the proxy in front of us have used? Refuse both.
            return Err(ProtocolError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if head.version() == Version::Http10 {
            // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding
            // has faulty framing.
            return Err(ProtocolError::Malformed("Transfer-Encoding in HTTP/1.0"));
        }
        let codings: Vec<&[u8]> = list_elements(head.headers("transfer-encoding")).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            [] => Err(ProtocolError::Malformed("empty Transfer-Encoding")),
            // Any other coding (gzip, or chunked followed by something) is one we
            // cannot decode; like nginx we say so rather than guess at a length.
            _ => Err(ProtocolError::UnsupportedTransferCoding),
        };
    }

    let Some(value) = length else {
        return Ok(BodyFraming::None);
    };
    if lengths.next().is_some() {
        // Even identical duplicates are refused: a server in front of us may have
        // merged or dropped them differently.
        return Err(ProtocolError::Malformed("more than one Content-Length"));
    }
    let declared = parse_content_length(value)?;
    if declared > max_body {
        return Err(ProtocolError::BodyTooLarge);
    }
    Ok(match declared {
        0 => BodyFraming::None,
        n => BodyFraming::Length(n),
    })
}

/// `Content-Length = 1*DIGIT`: no sign, no list, no spaces inside.
fn parse_content_length(value: &[u8]) -> Result<u64, ProtocolError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::Malformed("invalid Content-Length"));
    }
    value.iter().try_fold(0u64, |n, digit| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit - b'0')))
            // A length too large to count is certainly too large to accept.
            .ok_or(ProtocolError::BodyTooLarge)
    })
}

/// RFC 9112 section 9.3: HTTP/1.1 persists unless `close` is listed; HTTP/1.0
/// closes unless `keep-alive` is listed.
fn wants_keep_alive(head: &RequestHead) -> bool {
    let listed = |token| contains_token(head.headers("connection"), token);
    match head.version() {
        // HTTP/2 heads never come here (their core frames them), but a
        // stream ends without ending the connection.
        Version::Http11 | Version::Http2 => !listed("close"),
        Version::Http10 => listed("keep-alive") && !listed("close"),
    }
}

/// RFC 9110 section 10.1.1: `100-continue` is the only expectation; any other is
/// answered 417. HTTP/1.0 clients cannot expect anything, so theirs are ignored.
/// Whether the client waits for `100 Continue`. HTTP/2's requests are checked
/// here too: RFC 9110's expectations belong to no one version.
pub(crate) fn expectation(head: &RequestHead) -> Result<bool, ProtocolError> {
    if head.version() == Version::Http10 {
        return Ok(false);
    }
    let mut expects_continue = false;
    for element in list_elements(head.headers("expect")) {
        if element.eq_ignore_ascii_case(b"100-continue") {
            expects_continue = true;
        } else {
            return Err(ProtocolError::UnsupportedExpectation);
        }
    }
    Ok(expects_continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::tests::head;

    const MAX: u64 = 1 << 20;

    fn of(text: &str) -> Result<MessageSemantics, ProtocolError> {
        semantics(&head(text), MAX)
    }

    fn framing(fields: &str) -> Result<BodyFraming, ProtocolError> {
        of(&format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n")).map(|s| s.framing)
    }

    #[test]
    fn content_length() {
        assert_eq!(framing(""), Ok(BodyFraming::None));
        assert_eq!(framing("Content-Length: 0\r\n"), Ok(BodyFraming::None));
        assert_eq!(
            framing("Content-Length: 12\r\n"),
            Ok(BodyFraming::Length(12))
        );
        for bad in ["+5", "-1", "1,2", "5, 5", "0x10", "1 2", ""] {
            let got = framing(&format!("Content-Length: {bad}\r\n"));
            assert!(
                matches!(got, Err(ProtocolError::Malformed(_))),
                "{bad}: {got:?}"
            );
        }
        let twice = framing("Content-Length: 5\r\nContent-Length: 5\r\n");
        assert!(matches!(twice, Err(ProtocolError::Malformed(_))));
        assert_eq!(
            framing("Content-Length: 99999999999999999999999\r\n"),
            Err(ProtocolError::BodyTooLarge)
        );
        assert_eq!(
            framing(&format!("Content-Length: {}\r\n", MAX + 1)),
            Err(ProtocolError::BodyTooLarge)
        );
    }

    #[test]
    fn transfer_encoding() {
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: Chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: gzip, chunked\r\n"),
            Err(ProtocolError::UnsupportedTransferCoding)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            Err(ProtocolError::UnsupportedTransferCoding)
        );
        assert_eq!(
            framing("Transfer-Encoding: gzip\r\n"),
            Err(ProtocolError::UnsupportedTransferCoding)
        );
        assert!(matches!(
            framing("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            Err(ProtocolError::Malformed(_))
        ));
        let http10 = of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(matches!(http10, Err(ProtocolError::Malformed(_))));
    }

    #[test]
    fn keep_alive() {
        let ka = |text: &str| of(text).unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn expectations() {
        let with_body = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n";
        let ec = of(&format!("{with_body}Expect: 100-Continue\r\n\r\n"));
        assert!(ec.unwrap().expects_continue);
        let other = of(&format!("{with_body}Expect: teapot\r\n\r\n"));
        assert_eq!(other, Err(ProtocolError::UnsupportedExpectation));
        let no_body = of("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
        assert!(!no_body.unwrap().expects_continue);
    }
}
