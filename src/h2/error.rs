//! The error codes of RFC 9113 section 7, and the two kinds of error of
//! section 5.4: one that ends the connection (GOAWAY) and one that ends a
//! stream (RST_STREAM).

use std::fmt;

/// An HTTP/2 error code, as it goes on the wire (unknown ones are kept).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCode(pub u32);

impl ErrorCode {
    pub(crate) const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub(crate) const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub(crate) const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub(crate) const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub(crate) const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub(crate) const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub(crate) const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub(crate) const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub(crate) const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

/// What went wrong, and how much it costs: the connection, or one stream.
/// The text says why, for the trace and the GOAWAY's debug data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum H2Error {
    Connection(ErrorCode, &'static str),
    Stream(u32, ErrorCode, &'static str),
}
