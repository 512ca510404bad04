//! The `--redirect-http` listener's whole application: every request gets a
//! 308 to the same host, path and query over HTTPS (308, not 301, so that a
//! POST stays a POST).

use crate::http::{RequestHead, Response, StatusCode};

/// The answer to `request` on the plaintext listener, for an HTTPS port.
pub(crate) fn to_https(request: &RequestHead, https_port: u16) -> Response {
    // The core has checked the Host: `uri-host [":" port]`, so cutting at the
    // last colon outside brackets leaves the host.
    let Some(host) = request
        .header_str("host")
        .map(host_only)
        .filter(|h| !h.is_empty())
    else {
        // Without a Host there is no name to send the client to.
        return Response::error(StatusCode::BAD_REQUEST);
    };
    let port = match https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let query = request
        .query()
        .map(|q| format!("?{}", super::url::for_header(q)))
        .unwrap_or_default();
    let path = super::url::for_header(request.path());
    Response::error(StatusCode::PERMANENT_REDIRECT)
        .with_header("Location", format!("https://{host}{port}{path}{query}"))
}

/// `example.org:8080` → `example.org`, `[::1]:80` → `[::1]`.
fn host_only(value: &str) -> &str {
    let value = value.trim();
    match value.rfind(':') {
        Some(colon) if !value.get(colon..).is_some_and(|rest| rest.contains(']')) => {
            value.get(..colon).unwrap_or(value)
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;

    fn location(request: &str, port: u16) -> Option<String> {
        to_https(&head(request), port)
            .header("location")
            .map(str::to_owned)
    }

    #[test]
    fn keeps_host_path_and_query() {
        assert_eq!(
            location(
                "GET /a/b?c=1 HTTP/1.1\r\nHost: example.org:8080\r\n\r\n",
                8443
            ),
            Some("https://example.org:8443/a/b?c=1".to_owned())
        );
        assert_eq!(
            location("POST /x HTTP/1.1\r\nHost: example.org\r\n\r\n", 443),
            Some("https://example.org/x".to_owned())
        );
        assert_eq!(
            location(
                "GET /r\u{e9}sum\u{e9} HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
                443
            ),
            Some("https://[::1]/r%C3%A9sum%C3%A9".to_owned())
        );
        let r = to_https(&head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 443);
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    }

    #[test]
    fn without_a_host_there_is_nowhere_to_send_the_client() {
        let r = to_https(&head("GET / HTTP/1.0\r\n\r\n"), 443);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
