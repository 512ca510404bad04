//! The parsers the `head` and `validators` fuzz targets feed directly (the
//! product targets go through the whole session instead), behind a face of
//! their own: the fuzzers see what goes in and what comes out, and the
//! parsers' types stay the crate's.

use std::time::SystemTime;

use crate::app::statics::{self, RangeAnswer};
pub use crate::http::Limits;
use crate::http::{self, RequestHead};

/// Most ranges one request may ask for before it is answered whole.
pub const MAX_RANGES: usize = statics::MAX_RANGES;

/// Where a request head ends, found as its bytes arrive.
#[derive(Default)]
pub struct HeadScanner(http::HeadScanner);

impl HeadScanner {
    /// The head's length once `buf` (which only grows between calls) holds
    /// all of it; the error's text when the bytes cannot be a head.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, String> {
        self.0.scan(buf, limits).map_err(|e| e.to_string())
    }
}

/// A request head, parsed and checked.
pub struct Head(RequestHead);

impl Head {
    pub fn path(&self) -> &str {
        self.0.path()
    }

    pub fn query(&self) -> Option<&str> {
        self.0.query()
    }

    pub fn request_line(&self) -> String {
        self.0.request_line()
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.header(name)
    }
}

/// The head in `bytes` parsed and checked, or why not.
pub fn parse_head(bytes: &[u8], limits: &Limits) -> Result<Head, String> {
    http::parse_head(bytes, limits)
        .map(Head)
        .map_err(|e| e.to_string())
}

/// Whether a parsed head's framing (its body, its connection) is decided, or
/// why it is refused.
pub fn semantics(head: &Head, max_body: u64) -> Result<(), String> {
    http::semantics(&head.0, max_body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A file's validators: its entity tag and modification time.
pub struct Validators(statics::Validators);

impl Validators {
    pub fn new(etag: String, modified: SystemTime) -> Validators {
        Validators(statics::Validators::new(etag, modified))
    }
}

/// What the preconditions of `request` say against `current`: proceed, not
/// modified, or failed.
pub fn evaluate(request: &Head, current: &Validators) -> &'static str {
    match statics::evaluate(&request.0, &current.0) {
        statics::Precondition::Proceed => "proceed",
        statics::Precondition::NotModified => "not modified",
        statics::Precondition::Failed => "failed",
    }
}

/// Whether an `If-Range` lets a range request have its ranges.
pub fn if_range_holds(request: &Head, current: &Validators) -> bool {
    statics::if_range_holds(&request.0, &current.0)
}

/// The ranges a `Range` value asks of a file of `len` bytes, as (first,
/// last) inclusive; `None` when the answer is the whole file or a 416.
pub fn range_answer(header: Option<&[u8]>, len: u64) -> Option<Vec<(u64, u64)>> {
    match statics::range_answer(header, len) {
        RangeAnswer::Partial(ranges) => Some(ranges.iter().map(|r| (r.first, r.last)).collect()),
        RangeAnswer::Full | RangeAnswer::Unsatisfiable => None,
    }
}
