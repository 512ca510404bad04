//! The built-in endpoints of the HTTP-server challenge: `/echo/{text}` and
//! `/user-agent`. Their bytes are what the challenge checks, so they are exact:
//! `Content-Type: text/plain` with no charset, the body exactly the text.

use super::{Reply, encoding, url};
use crate::http::{RequestHead, Response, StatusCode};

/// `GET /echo/{text}`: the text, percent-decoded (as nginx would capture it;
/// the query left out), gzip-compressed when the client accepts gzip.
pub(super) fn echo(request: &RequestHead, text: &str) -> Reply {
    let Ok(text) = url::decode(text) else {
        return Reply::Respond(Response::error(StatusCode::BAD_REQUEST));
    };
    // The representation depends on Accept-Encoding, compressed or not, so caches
    // must know that either way.
    let response = if encoding::accepts(request, "gzip") {
        Response::new(StatusCode::OK)
            .with_header("Content-Type", "text/plain")
            .with_header("Content-Encoding", "gzip")
            .with_body(encoding::gzip(&text))
    } else {
        Response::plain_text(StatusCode::OK, text)
    };
    Reply::Respond(response.with_header("Vary", "Accept-Encoding"))
}

/// `GET /user-agent`: the `User-Agent` value, or an empty body without one.
pub(super) fn user_agent(request: &RequestHead) -> Reply {
    let agent = request.header("user-agent").unwrap_or_default();
    Reply::Respond(Response::plain_text(StatusCode::OK, agent.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{body_bytes, respond};
    use crate::http::test_head as head;

    #[test]
    fn echo_returns_the_text() {
        let req = head("GET /echo/abc HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = respond(echo(&req, "abc"));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(body_bytes(&r), b"abc");
    }

    #[test]
    fn echo_decodes_the_text() {
        let req = head("GET /echo/hello%2C%20loop HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            body_bytes(&respond(echo(&req, "hello%2C%20loop"))),
            b"hello, loop"
        );
        assert_eq!(
            body_bytes(&respond(echo(&req, "r\u{e9}sum\u{e9}"))),
            "r\u{e9}sum\u{e9}".as_bytes(),
            "raw UTF-8 stands for itself"
        );
        assert_eq!(
            respond(echo(&req, "100%")).status(),
            StatusCode::BAD_REQUEST,
            "a stray % is refused (the core refuses it first)"
        );
    }

    #[test]
    fn echo_compresses_for_gzip_clients() {
        let req = head("GET /echo/abc HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, gzip\r\n\r\n");
        let r = respond(echo(&req, "abc"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(body_bytes(&r), encoding::gzip(b"abc"));
    }

    #[test]
    fn user_agent_echoes_the_header_whatever_its_case() {
        let req = head("GET /user-agent HTTP/1.1\r\nHost: a\r\nuser-AGENT: foobar/1.2.3\r\n\r\n");
        let r = respond(user_agent(&req));
        assert_eq!(body_bytes(&r), b"foobar/1.2.3");
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }
}
