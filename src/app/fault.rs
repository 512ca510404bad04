//! Fault injection, for the tests that prove a bug costs one connection
//! (feature `fault-injection`, which only test builds turn on: a release
//! binary has no such route).
//!
//! - `GET /__oneloop/panic` panics in the router, before any answer exists;
//! - `POST /__oneloop/panic` accepts the body, then panics on its first piece,
//!   while the connection is in the middle of reading it.

use super::{BodySink, Reply};
use crate::http::{Method, RequestHead, Response};

/// The route that panics.
pub(crate) const PANIC_PATH: &str = "/__oneloop/panic";

/// The reply for the fault route, or `None` for every other request.
pub(crate) fn inject(request: &RequestHead) -> Option<Reply> {
    if request.path() != PANIC_PATH {
        return None;
    }
    match request.method() {
        Method::Post => Some(Reply::ReadBody(Box::new(PanicOnBody))),
        _ => panic!("fault injection: {PANIC_PATH} was requested"),
    }
}

struct PanicOnBody;

impl BodySink for PanicOnBody {
    fn write(&mut self, _data: &[u8]) -> Result<(), Response> {
        panic!("fault injection: a body reached {PANIC_PATH}");
    }

    fn finish(self: Box<Self>) -> Response {
        panic!("fault injection: the body of {PANIC_PATH} ended");
    }
}
