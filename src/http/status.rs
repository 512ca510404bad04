//! Status codes and their standard reason phrases (RFC 9110 section 15).
//!
//! The reason phrase is what a client prints, and what the HTTP-server challenge
//! compares byte for byte, so every code we send has its registered phrase here.

use std::fmt;

/// An HTTP status code that oneloop knows how to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StatusCode(u16);

impl StatusCode {
    pub(crate) const CONTINUE: Self = Self(100);
    pub(crate) const OK: Self = Self(200);
    pub(crate) const CREATED: Self = Self(201);
    pub(crate) const NO_CONTENT: Self = Self(204);
    pub(crate) const PARTIAL_CONTENT: Self = Self(206);
    pub(crate) const MOVED_PERMANENTLY: Self = Self(301);
    pub(crate) const FOUND: Self = Self(302);
    pub(crate) const SEE_OTHER: Self = Self(303);
    pub(crate) const NOT_MODIFIED: Self = Self(304);
    pub(crate) const TEMPORARY_REDIRECT: Self = Self(307);
    pub(crate) const PERMANENT_REDIRECT: Self = Self(308);
    pub(crate) const BAD_REQUEST: Self = Self(400);
    pub(crate) const UNAUTHORIZED: Self = Self(401);
    pub(crate) const FORBIDDEN: Self = Self(403);
    pub(crate) const NOT_FOUND: Self = Self(404);
    pub(crate) const METHOD_NOT_ALLOWED: Self = Self(405);
    pub(crate) const REQUEST_TIMEOUT: Self = Self(408);
    pub(crate) const PRECONDITION_FAILED: Self = Self(412);
    pub(crate) const CONTENT_TOO_LARGE: Self = Self(413);
    pub(crate) const URI_TOO_LONG: Self = Self(414);
    pub(crate) const RANGE_NOT_SATISFIABLE: Self = Self(416);
    pub(crate) const EXPECTATION_FAILED: Self = Self(417);
    pub(crate) const MISDIRECTED_REQUEST: Self = Self(421);
    pub(crate) const TOO_MANY_REQUESTS: Self = Self(429);
    pub(crate) const REQUEST_HEADER_FIELDS_TOO_LARGE: Self = Self(431);
    pub(crate) const INTERNAL_SERVER_ERROR: Self = Self(500);
    pub(crate) const NOT_IMPLEMENTED: Self = Self(501);
    pub(crate) const SERVICE_UNAVAILABLE: Self = Self(503);
    pub(crate) const HTTP_VERSION_NOT_SUPPORTED: Self = Self(505);
    pub(crate) const INSUFFICIENT_STORAGE: Self = Self(507);

    /// The three-digit code.
    pub(crate) fn as_u16(self) -> u16 {
        self.0
    }

    /// The reason phrase registered for this code.
    pub(crate) fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            421 => "Misdirected Request",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            507 => "Insufficient Storage",
            _ => unreachable!("StatusCode is only built from the constants above"),
        }
    }

    /// Whether a response with this status may carry content (RFC 9110 section 6.4.1):
    /// informational responses and 304 never do (nor would 204, which oneloop
    /// never sends).
    pub(crate) fn permits_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }

    /// The code for `code`, if oneloop can send it (a configuration names
    /// codes by number).
    pub(crate) fn known(code: u16) -> Option<StatusCode> {
        const KNOWN: &[StatusCode] = &[
            StatusCode::CONTINUE,
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::NO_CONTENT,
            StatusCode::PARTIAL_CONTENT,
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::FOUND,
            StatusCode::SEE_OTHER,
            StatusCode::NOT_MODIFIED,
            StatusCode::TEMPORARY_REDIRECT,
            StatusCode::PERMANENT_REDIRECT,
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::PRECONDITION_FAILED,
            StatusCode::CONTENT_TOO_LARGE,
            StatusCode::URI_TOO_LONG,
            StatusCode::RANGE_NOT_SATISFIABLE,
            StatusCode::EXPECTATION_FAILED,
            StatusCode::MISDIRECTED_REQUEST,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::NOT_IMPLEMENTED,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            StatusCode::INSUFFICIENT_STORAGE,
        ];
        KNOWN.iter().copied().find(|known| known.0 == code)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases_are_the_registered_ones() {
        assert_eq!(StatusCode::OK.reason(), "OK");
        assert_eq!(StatusCode::CREATED.reason(), "Created");
        assert_eq!(StatusCode::NOT_FOUND.reason(), "Not Found");
        assert_eq!(
            StatusCode::METHOD_NOT_ALLOWED.reason(),
            "Method Not Allowed"
        );
        assert_eq!(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.to_string(),
            "431 Request Header Fields Too Large"
        );
    }

    #[test]
    fn bodiless_statuses() {
        assert!(!StatusCode::CONTINUE.permits_body());
        assert!(!StatusCode::NOT_MODIFIED.permits_body());
        assert!(StatusCode::OK.permits_body());
        assert!(StatusCode::NOT_FOUND.permits_body());
    }
}
