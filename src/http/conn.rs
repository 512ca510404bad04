//! One HTTP/1.1 connection, as a state machine that never touches a socket.
//!
//! # Theory of operation
//!
//! Everything that affects the connection's state and its transitions lives in
//! this file. Its user (the [`Session`](crate::Session), on a driver's behalf)
//! does four things with a [`Connection`], and nothing else:
//!
//! 1. puts received bytes into [`read_buffer`](Connection::read_buffer) and reports
//!    them with [`received`](Connection::received) (or
//!    [`received_eof`](Connection::received_eof));
//! 2. sends what [`output`](Connection::output) holds and reports it with
//!    [`written`](Connection::written), which reports each response delivered;
//! 3. calls [`handle_timeout`](Connection::handle_timeout) once
//!    [`poll_timeout`](Connection::poll_timeout) has passed;
//! 4. pulls [`Event`]s with [`next_event`](Connection::next_event) after each of
//!    those, and answers them.
//!
//! The events: a request head (numbered: the `id`th exchange of the connection),
//! pieces of its body, the end of its body, or a request that could not be read
//! (which the connection has already answered, if anyone was listening). Each
//! request is answered exactly once with [`respond`](Connection::respond), before
//! or after asking for the body with [`read_body`](Connection::read_body).
//! Requests are handed out one at a time, and the next head is not even parsed
//! until the current request has its answer, so pipelined responses go out
//! strictly in request order.
//!
//! The driver closes the socket when [`is_closed`](Connection::is_closed),
//! half-closing it first when
//! [`take_shutdown_request`](Connection::take_shutdown_request) says so.
//!
//! Time comes in with every call that can move a deadline, and with every call
//! that can queue a response a [`Now`] also carries the `Date` text, so the core
//! never reads a clock and its timeouts are testable without sleeping.
//!
//! # States
//!
//! ```text
//!  Idle ──first byte──▶ ReadingHead ──complete head──▶ AwaitingAnswer
//!   ▲                                                    │      │
//!   │                                       read_body()  │      │ respond()
//!   │                                                    ▼      │
//!   │                          ReadingBody ──body end──▶ AwaitingAnswer ─respond()─┐
//!   │                              │ respond() before the body ends               │
//!   │                              ▼                                               │
//!   ├────── body end ──── DiscardingBody ◀── respond() with a body unread ─────────┤
//!   ├──────────────────────────────────────── respond(), keep-alive ───────────────┘
//!   │
//!  any reading state ── error, timeout, `Connection: close`, shutdown ──▶ Closing
//!  Closing ── output flushed ──▶ Closed, or Lingering when the client may still be
//!  sending (our side is shut, its bytes are read and dropped) ── EOF or timeout ──▶ Closed
//! ```

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::body::{BodyDecoder, Decoded};
use super::buffer::{InputBuffer, READ_SIZE};
use super::error::ProtocolError;
use super::framing::{self, BodyFraming, MessageSemantics};
use super::head::{self, HeadScanner};
use super::limits::{Limits, Timeouts};
use super::output::{Delivered, WriteQueue};
use super::request::{RequestHead, Version};
use super::response::Response;
use super::status::StatusCode;

/// One reading of the driver's clock: the instant for deadlines, the wall-clock
/// time for what the application dates, and the `Date` header text (formatted
/// by the driver at most once a second) for responses.
#[derive(Clone, Copy, Debug)]
pub struct Now<'a> {
    pub instant: Instant,
    pub wall: SystemTime,
    pub date: &'a str,
}

/// Everything a connection is configured with (shared by every connection of a
/// driver, not copied into each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// `Strict-Transport-Security: max-age=N` on every response (an HTTPS
    /// listener's, with `--hsts N`; never a plaintext one's, RFC 6797 7.2).
    pub strict_transport_max_age: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Between requests: nothing of the next one has arrived.
    Idle,
    /// Part of a request head has arrived.
    ReadingHead,
    /// The application holds the request (its head, or the end of its body) and
    /// owes it an answer.
    AwaitingAnswer,
    /// The body is being handed to the application.
    ReadingBody,
    /// The answer is queued; the rest of the body is read and dropped so the next
    /// request starts where it should.
    DiscardingBody,
    /// No more requests will be read; the queued responses are being flushed.
    Closing,
    /// Our side is shut; the client's remaining bytes are read and dropped so that
    /// closing does not reset the connection under our last response.
    Lingering,
    /// The driver should close the socket.
    Closed,
}

/// What the application is told, one at a time, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// A new request, the `id`th on this connection (from 1). Answer it with
    /// `respond`, or ask for its body with `read_body`.
    Request { id: u64, head: RequestHead },
    /// A piece of the body asked for.
    Body(&'a [u8]),
    /// The body asked for is complete: answer with `respond`.
    BodyEnd,
    /// The request could not be read. The connection has answered it if it still
    /// could, and is closing; whatever the application held for it is abandoned.
    Failed(Failure),
    /// Nothing until more input arrives, output drains, or a timeout passes.
    Pending,
}

/// A request that could not be read, as the application hears of it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub error: ProtocolError,
    /// The exchange the connection answered it as (with the error's status),
    /// if someone was still there to answer.
    pub answered_as: Option<u64>,
    /// The request line, or the start of what was received of it, when the
    /// application never saw the request's head.
    pub unseen_request: Option<String>,
}

/// The request being answered.
#[derive(Debug)]
struct Exchange {
    id: u64,
    semantics: MessageSemantics,
    answered: bool,
    continue_sent: bool,
}

impl Exchange {
    fn new(id: u64, semantics: MessageSemantics) -> Exchange {
        Exchange {
            id,
            semantics,
            answered: false,
            continue_sent: false,
        }
    }

    /// An exchange that exists only to carry the answer to a request that could
    /// not be read: no body, and the connection ends with it. Even a failing
    /// HEAD request gets no body.
    fn failed(id: u64, version: Version, is_head: bool) -> Exchange {
        let semantics = MessageSemantics {
            framing: BodyFraming::None,
            keep_alive: false,
            expects_continue: false,
            version,
            is_head,
        };
        Exchange::new(id, semantics)
    }
}

pub(crate) struct Connection {
    /// The driver's name for this connection (its token), for the trace log.
    id: usize,
    state: State,
    settings: Arc<Settings>,
    input: InputBuffer,
    /// Requests begun on this connection; the last one's number.
    exchanges: u64,
    peer_closed: bool,
    /// The server is shutting down: finish what is in hand, start nothing new.
    draining: bool,
    /// Closing with input left unread: linger before closing.
    linger: bool,
    shutdown_requested: bool,
    served: u64,
    /// Time of the latest call from the driver.
    now: Instant,
    accepted: Instant,
    /// When the current state began (for an idle connection: when it became
    /// idle, or wrote its last byte, whichever came later).
    since: Instant,
    /// What only a connection at work needs; `None` while it is idle.
    busy: Option<Box<Busy>>,
}

/// The part of a connection that exists only while it is at work: from the
/// first byte of a request until it is idle again with nothing left to send.
/// An idle keep-alive connection (most of a busy server's connections, most of
/// the time) holds none of it: about 300 bytes and the write queue's storage
/// saved on each, at the price of one allocation per busy spell.
#[derive(Debug)]
struct Busy {
    /// Body bytes handed out in the last `Event::Body`, consumed on the next call.
    handed_out: usize,
    scanner: HeadScanner,
    exchange: Option<Exchange>,
    /// A failure not yet told to the application (one found by a timeout).
    failure: Option<Failure>,
    body: Option<BodyDecoder>,
    output: WriteQueue,
    last_read: Instant,
    last_write: Instant,
}

impl Busy {
    fn new(now: Instant) -> Busy {
        Busy {
            handed_out: 0,
            scanner: HeadScanner::default(),
            exchange: None,
            failure: None,
            body: None,
            output: WriteQueue::new(),
            last_read: now,
            last_write: now,
        }
    }

    /// Whether it holds nothing an idle connection would need.
    fn is_spent(&self) -> bool {
        self.handed_out == 0
            && self.exchange.is_none()
            && self.failure.is_none()
            && self.body.is_none()
            && self.output.is_empty()
    }
}

/// The output of a connection with nothing queued.
static NO_OUTPUT: WriteQueue = WriteQueue::new();

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("buffered_in", &self.input.len())
            .field("buffered_out", &self.output().buffered_bytes())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(id: usize, settings: Arc<Settings>, now: Instant) -> Connection {
        log::trace!("#{id}: new connection, Idle");
        Connection {
            id,
            state: State::Idle,
            settings,
            input: InputBuffer::default(),
            exchanges: 0,
            peer_closed: false,
            draining: false,
            linger: false,
            shutdown_requested: false,
            served: 0,
            now,
            accepted: now,
            since: now,
            busy: None,
        }
    }

    /// The working part, made if the connection was idle.
    fn busy(&mut self) -> &mut Busy {
        let now = self.now;
        self.busy.get_or_insert_with(|| Box::new(Busy::new(now)))
    }

    /// Back to idle with nothing left to send: the working part goes.
    fn rest_if_idle(&mut self) {
        if self.state != State::Idle {
            return;
        }
        if let Some(busy) = self.busy.take_if(|busy| busy.is_spent()) {
            // The keep-alive timeout counts from the later of the two.
            self.since = self.since.max(busy.last_write);
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    fn set_state(&mut self, next: State) {
        if self.state != next {
            log::trace!("#{}: {:?} -> {:?}", self.id, self.state, next);
            self.state = next;
            self.since = self.now;
        }
    }

    // ----- input -------------------------------------------------------------

    /// Whether the driver should read from the socket now.
    pub(crate) fn wants_read(&self) -> bool {
        if self.peer_closed || self.input.len() >= self.input_bound() {
            return false;
        }
        match self.state {
            // Backpressure: a client that does not read its responses does not get
            // more of its pipelined requests read either.
            State::Idle | State::ReadingHead => !self.output_full(),
            State::ReadingBody | State::DiscardingBody | State::Lingering => true,
            State::AwaitingAnswer | State::Closing | State::Closed => false,
        }
    }

    fn input_bound(&self) -> usize {
        self.settings.limits.max_head_bytes.max(READ_SIZE)
    }

    fn output_full(&self) -> bool {
        let limits = &self.settings.limits;
        let output = self.output();
        output.buffered_bytes() >= limits.max_queued_bytes
            || output.responses_in_flight() >= limits.max_queued_responses
    }

    /// Bytes received and not yet consumed.
    #[cfg(any(test, feature = "harness"))]
    pub(crate) fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Whether the input buffer has storage; the driver attaches some from its
    /// pool with [`attach_buffer`](Self::attach_buffer) before reading.
    pub(crate) fn has_buffer(&self) -> bool {
        self.input.has_storage()
    }

    pub(crate) fn attach_buffer(&mut self, storage: Vec<u8>) {
        self.input.attach(storage);
    }

    /// Hands the input buffer's storage back when it holds nothing, so an idle
    /// connection keeps no buffer.
    pub(crate) fn detach_idle_buffer(&mut self) -> Option<Vec<u8>> {
        if self.busy.as_ref().is_some_and(|busy| busy.handed_out > 0) {
            return None;
        }
        self.input.detach_if_empty()
    }

    /// Room for the driver to read into (empty when the input is full).
    pub(crate) fn read_buffer(&mut self) -> &mut [u8] {
        self.consume_handed_out();
        let bound = self.input_bound();
        self.input.spare(bound)
    }

    /// Reports `n` bytes read into [`read_buffer`](Self::read_buffer).
    pub(crate) fn received(&mut self, n: usize, now: Instant) {
        self.now = now;
        self.input.commit(n);
        if n > 0
            && let Some(busy) = self.busy.as_mut()
        {
            busy.last_read = now;
        }
        if self.state == State::Lingering || self.state == State::Closed {
            self.input.clear();
        }
    }

    /// Reports that the client closed its sending side. Requests already received
    /// are still answered (a client may send a request and then `shutdown(SHUT_WR)`).
    pub(crate) fn received_eof(&mut self, now: Instant) {
        self.now = now;
        if !self.peer_closed {
            log::trace!("#{}: peer closed its side", self.id);
        }
        self.peer_closed = true;
        if self.state == State::Lingering {
            self.set_state(State::Closed);
        }
    }

    fn consume_handed_out(&mut self) {
        if let Some(busy) = self.busy.as_mut()
            && busy.handed_out > 0
        {
            self.input.consume(busy.handed_out);
            busy.handed_out = 0;
        }
    }

    /// Advances the machine as far as the input allows and says what happened.
    pub(crate) fn next_event(&mut self, now: Now<'_>) -> Event<'_> {
        self.now = now.instant;
        self.consume_handed_out();
        if let Some(failure) = self.busy.as_mut().and_then(|busy| busy.failure.take()) {
            return Event::Failed(failure);
        }
        loop {
            match self.state {
                State::Idle => {
                    if self.draining {
                        self.close(false);
                        continue;
                    }
                    if self.output_full() {
                        return Event::Pending;
                    }
                    self.skip_empty_lines();
                    // A lone CR may be the first half of an empty line: until the
                    // next byte says otherwise, no request has begun.
                    if self.input.is_empty() || self.input.data() == b"\r" {
                        if self.peer_closed {
                            self.close(false);
                        }
                        self.rest_if_idle();
                        return Event::Pending;
                    }
                    self.busy();
                    self.set_state(State::ReadingHead);
                }
                State::ReadingHead => {
                    let limits = self.settings.limits;
                    let scanned = match self.busy.as_mut() {
                        Some(busy) => busy.scanner.scan(self.input.data(), &limits),
                        None => Err(ProtocolError::Malformed("a head without its scanner")),
                    };
                    match scanned {
                        Err(error) => return self.failed(error, now.date),
                        Ok(None) if self.peer_closed => {
                            return self.failed(ProtocolError::Truncated, now.date);
                        }
                        Ok(None) => return Event::Pending,
                        Ok(Some(len)) => return self.start_exchange(len, now.date),
                    }
                }
                State::ReadingBody | State::DiscardingBody => {
                    let Some(busy) = self.busy.as_mut() else {
                        return self.failed(
                            ProtocolError::Malformed("a body without its state"),
                            now.date,
                        );
                    };
                    let Some(decoder) = busy.body.as_mut() else {
                        if let Some(event) = self.end_of_body() {
                            return event;
                        }
                        continue;
                    };
                    match decoder.decode(self.input.data()) {
                        Err(error) => return self.failed(error, now.date),
                        Ok(Decoded::Data { consumed, data }) => {
                            if self.state == State::DiscardingBody {
                                self.input.consume(consumed);
                                continue;
                            }
                            busy.handed_out = consumed;
                            return Event::Body(&self.input.data()[data]);
                        }
                        Ok(Decoded::Done { consumed }) => {
                            self.input.consume(consumed);
                            busy.body = None;
                            if let Some(event) = self.end_of_body() {
                                return event;
                            }
                        }
                        Ok(Decoded::NeedMore { consumed }) => {
                            self.input.consume(consumed);
                            if self.peer_closed {
                                return self.failed(ProtocolError::Truncated, now.date);
                            }
                            return Event::Pending;
                        }
                    }
                }
                State::Lingering | State::Closed => {
                    self.input.clear();
                    return Event::Pending;
                }
                State::AwaitingAnswer | State::Closing => return Event::Pending,
            }
        }
    }

    /// RFC 9112 section 2.2: empty lines before a request line are ignored (some
    /// clients send a CRLF after a POST body).
    fn skip_empty_lines(&mut self) {
        let crlfs = self
            .input
            .data()
            .chunks(2)
            .take_while(|pair| *pair == b"\r\n")
            .count();
        self.input.consume(crlfs * 2);
    }

    fn start_exchange(&mut self, head_len: usize, date: &str) -> Event<'static> {
        let limits = self.settings.limits;
        let parsed = match self.input.data().get(..head_len) {
            Some(bytes) => head::parse(bytes, &limits),
            None => Err(ProtocolError::Malformed("head longer than the input")),
        };
        let head = match parsed {
            Ok(head) => head,
            // The head stays in the buffer, for the failure to quote.
            Err(error) => return self.failed(error, date),
        };
        self.input.consume(head_len);
        self.busy().scanner.reset();
        self.exchanges += 1;
        let id = self.exchanges;
        let semantics = match framing::semantics(&head, limits.max_body_bytes) {
            Ok(semantics) => semantics,
            Err(error) => {
                // The head parsed: the failure is quoted by its request line.
                let is_head = head.method() == super::request::Method::Head;
                self.busy().exchange = Some(Exchange::failed(id, head.version(), is_head));
                self.fail(error, Some(head.request_line()), date);
                return self.next_failure();
            }
        };
        let busy = self.busy();
        busy.body = BodyDecoder::new(semantics.framing, limits.max_body_bytes);
        busy.exchange = Some(Exchange::new(id, semantics));
        self.set_state(State::AwaitingAnswer);
        Event::Request { id, head }
    }

    /// The body is complete: the application hears of it if it asked for the
    /// body; if the body was being discarded, the exchange is simply over.
    fn end_of_body(&mut self) -> Option<Event<'static>> {
        if self.state == State::ReadingBody {
            self.set_state(State::AwaitingAnswer);
            return Some(Event::BodyEnd);
        }
        let keep_alive = self.exchange_keeps_alive();
        self.finish_exchange(keep_alive);
        None
    }

    // ----- answering ---------------------------------------------------------

    /// Asks for the current request's body: it will come as `Event::Body` pieces
    /// and an `Event::BodyEnd`. Sends `100 Continue` if the client waits for it.
    pub(crate) fn read_body(&mut self) {
        let state = self.state;
        let Some(busy) = self.busy.as_deref_mut() else {
            debug_assert!(false, "read_body without a request");
            return;
        };
        let Some(exchange) = busy.exchange.as_mut() else {
            debug_assert!(false, "read_body without a request");
            return;
        };
        if state != State::AwaitingAnswer || exchange.answered {
            debug_assert!(false, "read_body in {state:?}");
            return;
        }
        if exchange.semantics.expects_continue && !exchange.continue_sent {
            exchange.continue_sent = true;
            let interim = format!("HTTP/1.1 {}\r\n\r\n", StatusCode::CONTINUE);
            busy.output.push_bytes(interim.as_bytes());
        }
        self.set_state(State::ReadingBody);
    }

    /// Queues the answer to the current request.
    pub(crate) fn respond(&mut self, response: Response, now: Now<'_>) {
        self.now = now.instant;
        let draining = self.draining;
        let Some(busy) = self.busy.as_deref_mut() else {
            debug_assert!(false, "respond without a request");
            return;
        };
        let body_unread = busy.body.is_some();
        let Some(exchange) = busy.exchange.as_mut() else {
            debug_assert!(false, "respond without a request");
            return;
        };
        if exchange.answered {
            debug_assert!(false, "a request answered twice");
            return;
        }
        exchange.answered = true;
        // A client that waits for 100 Continue and did not get it may never send
        // its body: we cannot read past it, so the connection ends here.
        let unsent_body_expected =
            body_unread && exchange.semantics.expects_continue && !exchange.continue_sent;
        let keep_alive = exchange.semantics.keep_alive
            && !response.wants_close()
            && !draining
            && !unsent_body_expected;
        self.queue_response(response, keep_alive, now.date);

        if !body_unread {
            if self.state == State::AwaitingAnswer {
                self.finish_exchange(keep_alive);
            }
        } else if keep_alive {
            self.set_state(State::DiscardingBody);
        } else {
            let busy = self.busy();
            busy.exchange = None;
            busy.body = None;
            self.close(true);
        }
    }

    fn exchange_keeps_alive(&self) -> bool {
        self.busy
            .as_ref()
            .and_then(|busy| busy.exchange.as_ref())
            .is_some_and(|e| e.semantics.keep_alive && !self.draining)
    }

    fn finish_exchange(&mut self, keep_alive: bool) {
        self.busy().exchange = None;
        self.served += 1;
        if keep_alive {
            self.set_state(State::Idle);
        } else {
            // Bytes the client sent after its last request will never be read.
            let unread = !self.input.is_empty();
            self.close(unread);
        }
    }

    /// Serializes the head, then the body unless the method or status forbid one.
    fn queue_response(&mut self, response: Response, keep_alive: bool, date: &str) {
        let exchange = self.busy.as_ref().and_then(|busy| busy.exchange.as_ref());
        let (id, version, is_head) = match exchange {
            Some(e) => (e.id, e.semantics.version, e.semantics.is_head),
            None => {
                debug_assert!(false, "a response to no request");
                (0, Version::Http11, false)
            }
        };
        // The response's buffer already holds the status line and its fields:
        // the framing is appended to it, and it is queued as it is. Bytes
        // pushed as they are: no formatting machinery on the path every
        // response takes.
        let (status, mut head, body) = response.into_parts();
        if status.permits_body() {
            head.extend_from_slice(b"Content-Length: ");
            push_decimal(&mut head, body.len());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"Date: ");
        head.extend_from_slice(date.as_bytes());
        head.extend_from_slice(b"\r\n");
        if let Some(max_age) = self.settings.strict_transport_max_age {
            let _ = write!(head, "Strict-Transport-Security: max-age={max_age}\r\n");
        }
        if !keep_alive {
            head.extend_from_slice(b"Connection: close\r\n");
        } else if version == Version::Http10 {
            head.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        head.extend_from_slice(b"\r\n");

        let now = self.now;
        let busy = self.busy();
        if busy.output.is_empty() {
            // The send timeout measures a stall in sending, which starts now.
            busy.last_write = now;
        }
        busy.output.push_vec(head);
        let body_start = busy.output.queued();
        if !is_head && status.permits_body() {
            for chunk in body.into_chunks() {
                busy.output.push_chunk(chunk);
            }
        }
        busy.output.end_response(id, body_start);
        log::trace!("#{} req {id}: queued {status}", self.id);
    }

    /// Ends the exchange on a framing error: answers it (with the error's status)
    /// if it is still unanswered and someone is listening, then closes. The
    /// application hears of it as the next event. `request_line` quotes a
    /// request whose head parsed but was never handed out.
    fn fail(&mut self, error: ProtocolError, request_line: Option<String>, date: &str) {
        log::debug!("#{}: {error}", self.id);
        let unanswered = self
            .busy
            .as_ref()
            .and_then(|busy| busy.exchange.as_ref())
            .is_none_or(|e| !e.answered);
        let mut answered_as = None;
        let mut unseen_request = request_line;
        if unanswered && let Some(status) = error.status() {
            if self.busy().exchange.is_none() {
                // A head that never parsed: quoted by what arrived of it.
                self.exchanges += 1;
                let exchange = Exchange::failed(self.exchanges, Version::Http11, false);
                self.busy().exchange = Some(exchange);
                unseen_request = Some(self.first_line_received());
            }
            if let Some(exchange) = self.busy().exchange.as_mut() {
                exchange.answered = true;
                answered_as = Some(exchange.id);
            }
            self.queue_response(Response::error(status).closing(), false, date);
        }
        let busy = self.busy();
        busy.failure = Some(Failure {
            error,
            answered_as,
            unseen_request,
        });
        busy.exchange = None;
        busy.body = None;
        self.input.clear();
        self.close(error != ProtocolError::Truncated && error != ProtocolError::TimedOut);
    }

    /// [`fail`](Self::fail), told to the application at once.
    fn failed(&mut self, error: ProtocolError, date: &str) -> Event<'static> {
        self.fail(error, None, date);
        self.next_failure()
    }

    fn next_failure(&mut self) -> Event<'static> {
        match self.busy.as_mut().and_then(|busy| busy.failure.take()) {
            Some(failure) => Event::Failed(failure),
            None => Event::Pending,
        }
    }

    /// The start of what was received, up to the first line end (at most 256
    /// bytes), for quoting a request whose head never parsed.
    fn first_line_received(&self) -> String {
        let first_line = self
            .input
            .data()
            .split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or_default();
        String::from_utf8_lossy(first_line.get(..256).unwrap_or(first_line)).into_owned()
    }

    /// No more requests: flush what is queued, then close (after lingering, when
    /// the client may still be sending).
    fn close(&mut self, linger: bool) {
        self.linger = linger && !self.peer_closed;
        if !matches!(
            self.state,
            State::Closing | State::Lingering | State::Closed
        ) {
            self.set_state(State::Closing);
        }
        self.after_output_change();
    }

    fn after_output_change(&mut self) {
        if self.state == State::Closing && self.output().is_empty() {
            if self.linger {
                self.shutdown_requested = true;
                self.set_state(State::Lingering);
            } else {
                self.set_state(State::Closed);
            }
        }
    }

    // ----- output ------------------------------------------------------------

    /// What is waiting to be written.
    pub(crate) fn output(&self) -> &WriteQueue {
        self.busy.as_ref().map_or(&NO_OUTPUT, |busy| &busy.output)
    }

    /// Whether anything waits to be written (nothing does once closed).
    pub(crate) fn has_output(&self) -> bool {
        self.state != State::Closed && !self.output().is_empty()
    }

    /// Reports that the driver wrote `n` bytes from the front of the output;
    /// each response whose last byte that was is reported to `delivered`.
    pub(crate) fn written(
        &mut self,
        n: usize,
        now: Instant,
        delivered: &mut impl FnMut(Delivered),
    ) {
        self.now = now;
        if n > 0
            && let Some(busy) = self.busy.as_mut()
        {
            busy.last_write = now;
            busy.output.advance(n, delivered);
        }
        self.after_output_change();
        self.rest_if_idle();
    }

    /// Once closed: drops what was still queued, reporting the responses it cut
    /// short to `delivered` (with the body bytes that did leave).
    pub(crate) fn abandon_output(&mut self, delivered: &mut impl FnMut(Delivered)) {
        if self.state == State::Closed
            && let Some(busy) = self.busy.as_mut()
        {
            busy.output.abandon(delivered);
        }
    }

    /// True once, when the driver should shut down the sending side of the socket
    /// (`shutdown(SHUT_WR)`) and keep reading to linger.
    pub(crate) fn take_shutdown_request(&mut self) -> bool {
        std::mem::take(&mut self.shutdown_requested)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Requests answered completely on this connection.
    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Graceful shutdown: finish the exchange in hand with `Connection: close`,
    /// start no other; an idle connection closes at once.
    pub(crate) fn drain(&mut self) {
        self.draining = true;
        if self.state == State::Idle && self.input.is_empty() {
            self.close(false);
        }
    }

    // ----- time --------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let t = &self.settings.timeouts;
        let busy = self.busy.as_deref();
        let (last_read, last_write) = busy.map_or((self.since, self.since), |busy| {
            (busy.last_read, busy.last_write)
        });
        let sending = self.has_output().then(|| last_write + t.send);
        let reading = match self.state {
            State::Idle if self.has_output() => None,
            // The first request's clock starts at accept, not at its first byte.
            State::Idle | State::ReadingHead if self.served == 0 => Some(self.accepted + t.header),
            State::Idle => Some(self.since.max(last_write) + t.keep_alive),
            State::ReadingHead => Some(self.since + t.header),
            State::ReadingBody | State::DiscardingBody => Some(last_read + t.body),
            State::Lingering => Some(self.since + t.linger),
            State::AwaitingAnswer | State::Closing | State::Closed => None,
        };
        match (sending, reading) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Acts on whatever deadline has passed by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Now<'_>) {
        self.now = now.instant;
        let date = now.date;
        let now = now.instant;
        let t = self.settings.timeouts;
        let last_write = self
            .busy
            .as_ref()
            .map_or(self.since, |busy| busy.last_write);
        if self.has_output() && now >= last_write + t.send {
            log::debug!("#{}: client stopped reading; closing", self.id);
            self.abort();
            return;
        }
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::Idle => {
                log::trace!("#{}: idle timeout", self.id);
                self.close(false);
            }
            State::ReadingHead | State::ReadingBody => {
                self.fail(ProtocolError::TimedOut, None, date);
            }
            State::DiscardingBody | State::Lingering => self.abort(),
            State::AwaitingAnswer | State::Closing | State::Closed => {}
        }
    }

    /// Turns the connection away before its first request is read (a client
    /// over its connection cap): `response` is queued as the answer to
    /// exchange 1, whatever the client sends, and the connection closes
    /// after it, lingering, since its request may be on its way. Returns
    /// the exchange answered; `None` once anything has been read.
    pub(crate) fn refuse(&mut self, response: Response, now: Now<'_>) -> Option<u64> {
        if self.state != State::Idle || self.exchanges > 0 || !self.input.is_empty() {
            return None;
        }
        self.now = now.instant;
        self.exchanges += 1;
        let id = self.exchanges;
        let mut exchange = Exchange::failed(id, Version::Http11, false);
        exchange.answered = true;
        self.busy().exchange = Some(exchange);
        self.queue_response(response.closing(), false, now.date);
        self.busy().exchange = None;
        self.close(true);
        Some(id)
    }

    /// A bug (a panic) interrupted the work on this connection: the request in
    /// hand, if it has no answer yet, gets `500` (after any responses queued
    /// before it) and the connection closes; if its answer was already queued,
    /// or no request is in hand, the connection closes at once. Returns the
    /// exchange answered with `500`, if one was.
    pub(crate) fn fail_internal(&mut self, now: Now<'_>) -> Option<u64> {
        let unanswered = self
            .busy
            .as_ref()
            .and_then(|busy| busy.exchange.as_ref())
            .filter(|e| !e.answered)
            .map(|e| e.id);
        let can_answer = matches!(
            self.state,
            State::AwaitingAnswer | State::ReadingBody | State::DiscardingBody
        );
        match unanswered {
            Some(id) if can_answer => {
                let answer = Response::error(StatusCode::INTERNAL_SERVER_ERROR).closing();
                self.respond(answer, now);
                Some(id)
            }
            _ => {
                self.abort();
                None
            }
        }
    }

    /// Closes at once, dropping whatever was queued.
    pub(crate) fn abort(&mut self) {
        if let Some(busy) = self.busy.as_mut() {
            busy.exchange = None;
            busy.body = None;
        }
        self.input.clear();
        self.set_state(State::Closed);
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests;
