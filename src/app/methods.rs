//! Which methods a resource answers, and the 405 for the others.
//!
//! A method the server does not know at all is 501 (decided in the router); a
//! method it knows but the resource does not support is 405 with an `Allow` list
//! (RFC 9110 section 15.5.6). `OPTIONS *` answers with what the server supports.

use super::Reply;
use crate::http::{Method, RequestHead, Response, StatusCode};

/// A set of methods and its `Allow` header value.
#[derive(Clone, Copy, Debug)]
pub(super) struct Allowed {
    methods: &'static [Method],
    header: &'static str,
}

impl Allowed {
    pub(super) fn contains(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    pub(super) fn header(&self) -> &'static str {
        self.header
    }
}

/// Resources that are only read: built-in endpoints and static files.
pub(super) const READ: Allowed = Allowed {
    methods: &[Method::Get, Method::Head],
    header: "GET, HEAD",
};

/// The `/files/` store.
pub(super) const READ_WRITE: Allowed = Allowed {
    methods: &[Method::Get, Method::Head, Method::Post],
    header: "GET, HEAD, POST",
};

/// Everything the server answers somewhere.
pub(super) const SERVER: Allowed = READ_WRITE;

/// Runs `handler` if the request's method is allowed, otherwise answers 405.
pub(super) fn only(
    request: &RequestHead,
    allowed: Allowed,
    handler: impl FnOnce() -> Reply,
) -> Reply {
    if allowed.contains(request.method()) {
        handler()
    } else {
        Reply::Respond(not_allowed(allowed))
    }
}

/// 405 Method Not Allowed, with the methods that are.
pub(super) fn not_allowed(allowed: Allowed) -> Response {
    Response::error(StatusCode::METHOD_NOT_ALLOWED).with_header("Allow", allowed.header())
}

/// The answer to `OPTIONS *`.
pub(super) fn options(allowed: Allowed) -> Response {
    Response::new(StatusCode::OK).with_header("Allow", allowed.header())
}
