//! The bounds one connection lives within: sizes it will buffer and times it will wait.
//!
//! Every knob has a default that is safe on a small public host; the CLI exposes them
//! (see `config.rs`) and the README's "Limits and defaults" table mirrors this file.

use std::time::Duration;

/// Sizes: how much of a request or of queued output one connection may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version). Longer → 414 URI Too Long.
    /// 8 KiB matches nginx's `large_client_header_buffers` line size.
    pub max_request_line: usize,
    /// Largest request head (request line and all fields). Larger → 431.
    /// 32 KiB leaves room for cookie-heavy browsers while bounding what a
    /// connection can make us hold before it has sent a single complete request.
    pub max_head_bytes: usize,
    /// Most header fields in one head. More → 431.
    pub max_headers: usize,
    /// Largest request body, decided from Content-Length before any of it is read,
    /// or as a chunked body crosses it. Larger → 413.
    pub max_body_bytes: u64,
    /// Backpressure: once this many bytes of responses wait in memory for a client
    /// that does not read them, its further pipelined requests are not read.
    pub max_queued_bytes: usize,
    /// Backpressure by count: responses queued but not yet sent (each may hold an
    /// open file), beyond which pipelined requests wait.
    pub max_queued_responses: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 64 * 1024 * 1024,
            max_queued_bytes: 256 * 1024,
            max_queued_responses: 32,
        }
    }
}

/// The most header fields the parser has room for, whatever `--max-headers` says.
pub(crate) const MAX_HEADERS_CEILING: usize = 1024;

/// Times: how long a connection may take over each phase of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head (or from accept, for the first request)
    /// to its final blank line. Not reset by progress, so a client trickling one byte
    /// a second (slowloris) is closed on time. → 408 and close.
    pub header: Duration,
    /// How long an idle keep-alive connection is kept between requests.
    pub keep_alive: Duration,
    /// Longest pause between two pieces of a request body. → 408 and close.
    pub body: Duration,
    /// Longest pause in a client's reading of our response before we give up on it.
    pub send: Duration,
    /// After a response that ends the connection while the client may still be
    /// sending (an early 413, say), how long its bytes are read and dropped so the
    /// response is not destroyed by a TCP reset (the "lingering close").
    pub linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            body: Duration::from_secs(30),
            send: Duration::from_secs(30),
            linger: Duration::from_secs(2),
        }
    }
}
