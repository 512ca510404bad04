//! A pretend driver and a pretend application around one [`Connection`], for
//! the core's own unit tests: they test the protocol, so a tiny application is
//! enough. (What tests the product is `crate::testkit`.)
//!
//! The application answers GET (and anything but POST) with the request target
//! as a `text/plain` body, and reads a POST's body and answers with it. The
//! client sends bytes into a "wire" (the socket's receive buffer), which the
//! connection reads from only when it wants to, and reads everything the
//! connection writes unless told not to. Time is a fake clock.
//!
//! After every step the harness checks the bounds the core promises: the input
//! buffer never outgrows its limit, and queued output stays within what one
//! response can add past the backpressure threshold.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::buffer::READ_SIZE;
use super::conn::{Connection, Event, Now, Settings, State};
use super::error::ProtocolError;
use super::output::Front;
use super::{Method, Response, StatusCode};

/// The `Date` every harness response carries.
pub(crate) const DATE: &str = "Sat, 21 Nov 2026 00:00:00 GMT";

/// A connection, its clock, and everything it wrote.
pub(crate) struct Harness {
    pub conn: Connection,
    settings: Settings,
    /// The fake clock.
    pub t: Instant,
    out: Vec<u8>,
    body: Option<Vec<u8>>,
    /// The largest body the pretend application has answered with.
    largest_echo: usize,
    pub failures: Vec<ProtocolError>,
    /// Whether the client takes output as soon as it is queued.
    pub client_reads: bool,
    /// Bytes sent by the client and not yet read by the connection.
    pub wire: Vec<u8>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::with(Settings::default())
    }

    pub(crate) fn with(settings: Settings) -> Harness {
        let t = Instant::now();
        Harness {
            conn: Connection::new(7, Arc::new(settings), t),
            settings,
            t,
            out: Vec::new(),
            body: None,
            largest_echo: 0,
            failures: Vec::new(),
            client_reads: true,
            wire: Vec::new(),
        }
    }

    pub(crate) fn now(&self) -> Now<'static> {
        Now {
            instant: self.t,
            wall: UNIX_EPOCH,
            date: DATE,
        }
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.t += by;
    }

    /// Advances the clock and lets the connection act on its deadlines.
    pub(crate) fn tick(&mut self, by: Duration) {
        self.advance(by);
        let now = self.now();
        self.conn.on_deadline(now);
        self.pump();
    }

    /// The client sends `bytes`; the connection reads them as a driver would.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
        self.pump();
    }

    /// The client closes its sending side.
    pub(crate) fn eof(&mut self) {
        self.pump();
        self.conn.received_eof(self.t);
        self.pump();
    }

    /// Everything the connection wrote, as text.
    pub(crate) fn output(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Moves bytes until nothing moves: the application answers, the client
    /// takes the output (if it reads), the connection reads the wire.
    pub(crate) fn pump(&mut self) {
        loop {
            self.run_app();
            // Output drained may unblock buffered requests; input read may
            // produce more output: go round until neither happens.
            let drained = self.drain();
            let read = self.read_wire();
            if !drained && !read {
                break;
            }
        }
    }

    /// Reads from the wire while the connection wants to; true if it read any.
    fn read_wire(&mut self) -> bool {
        let mut read = false;
        while !self.wire.is_empty() && self.conn.wants_read() {
            if !self.conn.has_buffer() {
                self.conn.attach_buffer(vec![0; READ_SIZE]);
            }
            let room = self.conn.read_buffer();
            let n = room.len().min(self.wire.len());
            room[..n].copy_from_slice(&self.wire[..n]);
            self.wire.drain(..n);
            self.conn.received(n, self.t);
            read = true;
            self.run_app();
        }
        read
    }

    fn run_app(&mut self) {
        loop {
            let now = self.now();
            match self.conn.next_event(now) {
                Event::Request { head, .. } if head.method() == Method::Post => {
                    self.body = Some(Vec::new());
                    self.conn.read_body();
                }
                Event::Request { head, .. } => {
                    let response = Response::plain_text(StatusCode::OK, head.target());
                    self.conn.respond(response, now);
                }
                Event::Body(data) => {
                    let data = data.to_vec();
                    self.body.get_or_insert_default().extend(data);
                }
                Event::BodyEnd => {
                    let body = self.body.take().unwrap_or_default();
                    self.largest_echo = self.largest_echo.max(body.len());
                    self.conn
                        .respond(Response::plain_text(StatusCode::OK, body), now);
                }
                Event::Failed(failure) => self.failures.push(failure.error),
                Event::Pending => break,
            }
            self.check_bounds();
        }
    }

    /// The client reads everything queued; true if there was anything.
    fn drain(&mut self) -> bool {
        let mut drained = false;
        while self.client_reads && self.conn.has_output() {
            drained = true;
            let mut slices = [IoSlice::new(&[]); 16];
            let n = match self.conn.output().front(&mut slices) {
                Front::Memory { count, .. } => {
                    let before = self.out.len();
                    for slice in &slices[..count] {
                        self.out.extend_from_slice(slice);
                    }
                    self.out.len() - before
                }
                Front::File { .. } => panic!("the harness application sends no files"),
                Front::Empty => 0,
            };
            self.conn.written(n, self.t, &mut |_| {});
        }
        drained
    }

    /// The memory bounds the core promises whatever the input.
    fn check_bounds(&self) {
        let limits = self.settings.limits;
        let input_bound = limits.max_head_bytes.max(READ_SIZE);
        assert!(
            self.conn.buffered_input() <= input_bound,
            "input buffer {} over its bound {input_bound}",
            self.conn.buffered_input()
        );
        // Backpressure stops new requests once the threshold is passed, so at
        // most one response goes past it; the harness echoes bodies and targets,
        // so one response is at most an echoed body (or a head's worth) and a
        // small head of its own.
        let largest_response = self.largest_echo.max(limits.max_head_bytes) + 1024;
        let output_bound = limits.max_queued_bytes + largest_response;
        assert!(
            self.conn.output().buffered_bytes() <= output_bound,
            "queued output {} over {output_bound}",
            self.conn.output().buffered_bytes()
        );
    }
}

/// Feeds `input` cut at `cuts` (taken modulo its length), then closes the
/// client's side; returns what came out, the final state, and the failures.
pub(crate) fn converse(input: &[u8], cuts: &[usize]) -> (String, State, Vec<ProtocolError>) {
    let mut h = Harness::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([input.len()]) {
        let end = cut.max(start);
        h.feed(&input[start..end]);
        start = end;
    }
    h.eof();
    (h.output(), h.conn.state(), h.failures)
}

/// The fuzz target's check, also replayed by the unit tests over every input
/// the fuzzer ever found (`fuzz/regressions/`): the first byte chooses where to
/// cut the rest, and the answer must not depend on the cuts.
pub(crate) fn assert_split_invariant(data: &[u8]) {
    let Some((&cut_seed, input)) = data.split_first() else {
        return;
    };
    let cuts: Vec<usize> = input
        .iter()
        .take(usize::from(cut_seed % 16))
        .map(|&b| usize::from(b) * 31 + usize::from(cut_seed))
        .collect();
    let whole = converse(input, &[]);
    assert_eq!(
        whole,
        converse(input, &cuts),
        "the answer depends on how the input was split"
    );
    if input.len() < 512 {
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(whole, converse(input, &every_byte), "byte by byte differs");
    }
}
