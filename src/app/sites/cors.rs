//! Cross-origin requests (the Fetch standard's CORS protocol) for the paths
//! a rule opens to other origins: the origin allowed is echoed, caches are
//! told the answer varies by `Origin`, and a preflight `OPTIONS` is answered
//! here without reaching the files.

use crate::http::{Method, RequestHead, Response, StatusCode};

/// How long a browser may remember a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "86400";
/// What a static site lets another origin do.
const METHODS: &str = "GET, HEAD";

/// The origins a rule lets in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cors {
    /// `"*"`: any origin, without credentials.
    Anyone,
    /// These origins (`https://app.example.org`), compared exactly, case
    /// aside.
    Origins(Vec<String>),
}

impl Cors {
    /// Reads `cors-origins`: `["*"]`, or origins as a browser sends them.
    pub(crate) fn parse(origins: &[String]) -> Result<Cors, String> {
        if origins.iter().any(|o| o == "*") {
            if origins.len() > 1 {
                return Err("cors-origins: \"*\" already lets every origin in".into());
            }
            return Ok(Cors::Anyone);
        }
        if origins.is_empty() {
            return Err("cors-origins: name at least one origin, or \"*\"".into());
        }
        for origin in origins {
            let shaped = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && !origin.contains(char::is_whitespace)
                && origin.matches('/').count() == 2;
            if !shaped {
                return Err(format!(
                    "cors-origins: \"{origin}\" is not an origin (scheme://host[:port], no path)"
                ));
            }
        }
        Ok(Cors::Origins(
            origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
        ))
    }

    /// The value of `Access-Control-Allow-Origin` for a request from
    /// `origin`, if it is let in.
    fn allowed<'a>(&self, origin: &'a str) -> Option<&'a str> {
        match self {
            Cors::Anyone => Some("*"),
            Cors::Origins(list) => list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
                .then_some(origin),
        }
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` for any other request.
    pub(crate) fn preflight(&self, request: &RequestHead) -> Option<Response> {
        let is_preflight = request.method() == Method::Options
            && request.header("origin").is_some()
            && request.header("access-control-request-method").is_some();
        if !is_preflight {
            return None;
        }
        let mut response = Response::new(StatusCode::NO_CONTENT);
        if let Some(allowed) = request.header_str("origin").and_then(|o| self.allowed(o)) {
            response.add_header("Access-Control-Allow-Origin", allowed);
            response.add_header("Access-Control-Allow-Methods", METHODS);
            if let Some(asked) = request
                .header_str("access-control-request-headers")
                .filter(|h| is_field_list(h))
            {
                response.add_header("Access-Control-Allow-Headers", asked);
            }
            response.add_header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE);
        }
        self.vary(&mut response);
        Some(response)
    }

    /// Marks `response` to a request from another origin, if it is let in.
    pub(crate) fn answer(&self, request: &RequestHead, response: &mut Response) {
        if let Some(allowed) = request.header_str("origin").and_then(|o| self.allowed(o)) {
            response.set_header("Access-Control-Allow-Origin", allowed);
        }
        self.vary(response);
    }

    /// The answer depends on `Origin` unless every origin gets the same.
    fn vary(&self, response: &mut Response) {
        if let Cors::Origins(_) = self {
            response.add_header("Vary", "Origin");
        }
    }
}

/// Whether `text` is a list of field names (tokens, commas and spaces), safe
/// to echo back.
fn is_field_list(text: &str) -> bool {
    text.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' ' | b'.' | b'!' | b'#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;

    fn origins() -> Cors {
        Cors::parse(&["https://app.example.org".into()]).unwrap()
    }

    #[test]
    fn a_listed_origin_is_echoed_and_caches_vary_on_it() {
        let request =
            head("GET /api/x HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.org\r\n\r\n");
        let mut response = Response::new(StatusCode::OK);
        origins().answer(&request, &mut response);
        assert_eq!(
            response.header("Access-Control-Allow-Origin"),
            Some("https://app.example.org")
        );
        assert_eq!(response.header("Vary"), Some("Origin"));

        let other = head("GET /api/x HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.test\r\n\r\n");
        let mut response = Response::new(StatusCode::OK);
        origins().answer(&other, &mut response);
        assert_eq!(response.header("Access-Control-Allow-Origin"), None);
        assert_eq!(response.header("Vary"), Some("Origin"));
    }

    #[test]
    fn a_preflight_is_answered_here() {
        let request = head(
            "OPTIONS /api/x HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.org\r\n\
             Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: x-token\r\n\r\n",
        );
        let response = origins().preflight(&request).unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            response.header("Access-Control-Allow-Methods"),
            Some("GET, HEAD")
        );
        assert_eq!(
            response.header("Access-Control-Allow-Headers"),
            Some("x-token")
        );
        let plain = head("OPTIONS /api/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(origins().preflight(&plain).is_none(), "not a preflight");
    }

    #[test]
    fn anyone_is_a_star_without_vary() {
        let cors = Cors::parse(&["*".into()]).unwrap();
        let request = head("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://x.test\r\n\r\n");
        let mut response = Response::new(StatusCode::OK);
        cors.answer(&request, &mut response);
        assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(response.header("Vary"), None);
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in ["example.org", "https://example.org/", "https://a.org/path"] {
            assert!(Cors::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(Cors::parse(&["*".into(), "https://a.org".into()]).is_err());
    }
}
