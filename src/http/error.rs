//! What can go wrong in the framing of a request, and how each failure is answered.
//!
//! Every one of these ends the connection: once framing is in doubt, nothing that
//! follows on the same connection can be trusted to be a request.

use std::fmt;

use super::status::StatusCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// The head or body breaks the grammar; the detail says where (for the debug log).
    Malformed(&'static str),
    /// The request line is longer than `max_request_line`.
    RequestLineTooLong,
    /// The head is larger than `max_head_bytes`, or has more than `max_headers` fields.
    HeadTooLarge,
    /// The body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// A transfer coding other than a lone `chunked`.
    UnsupportedTransferCoding,
    /// An HTTP version other than 1.0 and 1.1.
    UnsupportedVersion,
    /// An `Expect` other than `100-continue`.
    UnsupportedExpectation,
    /// A phase of the exchange took longer than its timeout.
    TimedOut,
    /// The client closed its side in the middle of a request.
    Truncated,
    /// Not the client's doing: the core broke a rule of its own (the detail
    /// says which). Answered 500, logged as an error, and the connection
    /// closes, as for a panic.
    Bug(&'static str),
}

impl ProtocolError {
    /// The status that tells the client what went wrong, or `None` when there is no
    /// one left to tell (the client has gone).
    pub(crate) fn status(self) -> Option<StatusCode> {
        Some(match self {
            ProtocolError::Malformed(_) => StatusCode::BAD_REQUEST,
            ProtocolError::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            ProtocolError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProtocolError::BodyTooLarge => StatusCode::CONTENT_TOO_LARGE,
            ProtocolError::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            ProtocolError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ProtocolError::UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            ProtocolError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            ProtocolError::Truncated => return None,
            ProtocolError::Bug(_) => StatusCode::INTERNAL_SERVER_ERROR,
        })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Malformed(detail) => write!(f, "malformed request: {detail}"),
            ProtocolError::RequestLineTooLong => f.write_str("request line too long"),
            ProtocolError::HeadTooLarge => f.write_str("request head too large"),
            ProtocolError::BodyTooLarge => f.write_str("request body too large"),
            ProtocolError::UnsupportedTransferCoding => f.write_str("unsupported transfer coding"),
            ProtocolError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
            ProtocolError::UnsupportedExpectation => f.write_str("unsupported expectation"),
            ProtocolError::TimedOut => f.write_str("timed out"),
            ProtocolError::Truncated => f.write_str("peer closed mid-request"),
            ProtocolError::Bug(detail) => write!(f, "bug: {detail}"),
        }
    }
}

impl std::error::Error for ProtocolError {}
