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
//! 3. calls [`on_deadline`](Connection::on_deadline) once
//!    [`deadline`](Connection::deadline) has passed;
//! 4. pulls [`Event`]s with [`next_event`](Connection::next_event) after each of
//!    those, and answers them.
//!
//! The events: a request head (numbered: the `exchange`th of the connection),
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
//!
//! Each state carries what it needs and nothing else ([`Stage`]): the head
//! scanner lives in `ReadingHead`, the exchange in the states that have a
//! request in hand, the body decoder in those that read a body. No state can
//! be reached without its parts, so no branch has to answer a missing part;
//! the public [`State`] is read off the stage. A connection at rest (idle with
//! nothing queued, lingering, closed) keeps only its state, and none of the
//! box of working parts.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::body::{BodyDecoder, Decoded};
use super::buffer::{InputBuffer, READ_SIZE};
use super::error::ProtocolError;
use super::framing::{self, MessageSemantics};
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
pub(crate) struct Now<'a> {
    pub instant: Instant,
    pub wall: SystemTime,
    pub date: &'a str,
}

/// Everything a connection is configured with (shared by every connection of a
/// driver, not copied into each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// `Strict-Transport-Security: max-age=N` on every response (an HTTPS
    /// listener's, with `--hsts N`; never a plaintext one's, RFC 6797 7.2).
    pub strict_transport_max_age: Option<u64>,
    /// HTTP/2 is spoken: offered by ALPN over TLS, and recognised by its
    /// preface on cleartext (`--no-http2` turns both off).
    pub http2: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            strict_transport_max_age: None,
            http2: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
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
    /// A new request, the `exchange`th on this connection (from 1). Answer
    /// it with `respond`, or ask for its body with `read_body`.
    /// `began` is when its head began to be read (the first byte, or for a
    /// pipelined request the moment the one before it made way): where the
    /// access log's duration starts, as the header timeout does.
    Request {
        exchange: u64,
        head: RequestHead,
        began: Instant,
    },
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
    /// When the head began to be read, for a request that failed while its
    /// head was arriving (one in hand has its own, from `Event::Request`).
    pub head_began: Option<Instant>,
}

/// The request being answered.
#[derive(Debug)]
struct Exchange {
    number: u64,
    semantics: MessageSemantics,
    answered: bool,
    continue_sent: bool,
}

impl Exchange {
    fn new(number: u64, semantics: MessageSemantics) -> Exchange {
        Exchange {
            number,
            semantics,
            answered: false,
            continue_sent: false,
        }
    }
}

/// What a response is queued as: the answer to which exchange, how its head
/// is written, and whether the connection goes on after it.
#[derive(Clone, Copy, Debug)]
struct Answer {
    number: u64,
    version: Version,
    is_head: bool,
    keep_alive: bool,
}

impl Answer {
    fn to(exchange: &Exchange, keep_alive: bool) -> Answer {
        Answer {
            number: exchange.number,
            version: exchange.semantics.version,
            is_head: exchange.semantics.is_head,
            keep_alive,
        }
    }

    /// The answer to a request that could not be read (or was refused
    /// unread): HTTP/1.1, with a body unless its line began as a HEAD
    /// request's (RFC 9110 section 9.3.2), and the connection ends with it.
    fn failed(number: u64, received: &[u8]) -> Answer {
        Answer {
            number,
            version: Version::Http11,
            is_head: received.starts_with(b"HEAD "),
            keep_alive: false,
        }
    }
}

/// A request whose head parsed but was never handed out, for its failure to
/// answer and quote.
struct Unhanded {
    answer: Answer,
    request_line: String,
}

pub(crate) struct Connection {
    /// The driver's name for this connection (its token), for the trace log.
    id: usize,
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
    /// The instant of the latest call from the driver.
    clock: Instant,
    accepted: Instant,
    /// When the current state began (for an idle connection: when it became
    /// idle, or wrote its last byte, whichever came later).
    since: Instant,
    /// What only a connection at work needs, with its state; `None` while it
    /// rests.
    busy: Option<Box<Busy>>,
    /// The state it rests in, while `busy` is `None`.
    resting: Rest,
}

/// A connection resting (between requests with nothing queued, or past its
/// last byte) holds nothing but its state; one at work holds a box of what
/// only work needs, its state included. An idle keep-alive connection (most
/// of a busy server's connections, most of the time) saves about 300 bytes
/// and the write queue's storage this way, at the price of one allocation
/// per busy spell.
///
/// The states a connection can rest in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rest {
    Idle,
    Lingering,
    Closed,
}

/// The part of a connection that exists only while it is at work: from the
/// first byte of a request until it is idle again with nothing left to send.
#[derive(Debug)]
struct Busy {
    /// The request side's state, with the parts that state needs.
    stage: Stage,
    /// Body bytes handed out in the last `Event::Body`, consumed on the next call.
    handed_out: usize,
    /// A failure not yet told to the application (one found by a timeout).
    failure: Option<Failure>,
    output: WriteQueue,
    last_read: Instant,
    last_write: Instant,
}

/// Where the request side is, carrying what it needs there and nowhere else:
/// a head is scanned only while it arrives, a body decoded only while the
/// application (or the discarding) wants it, an exchange exists only while
/// a request is in hand. No state can be without its parts.
#[derive(Debug)]
enum Stage {
    Idle,
    ReadingHead(HeadScanner),
    /// The application owes the answer; the body, if there is one, waits
    /// unread.
    AwaitingAnswer {
        exchange: Exchange,
        body: Option<BodyDecoder>,
    },
    /// The body goes to the application (`None`: the request has none, and
    /// its end comes at once).
    ReadingBody {
        exchange: Exchange,
        body: Option<BodyDecoder>,
    },
    /// Answered; the rest of the body is read and dropped, and the next
    /// request starts where it should.
    DiscardingBody {
        exchange: Exchange,
        body: BodyDecoder,
    },
    Closing,
    Lingering,
    Closed,
}

impl Stage {
    fn state(&self) -> State {
        match self {
            Stage::Idle => State::Idle,
            Stage::ReadingHead(_) => State::ReadingHead,
            Stage::AwaitingAnswer { .. } => State::AwaitingAnswer,
            Stage::ReadingBody { .. } => State::ReadingBody,
            Stage::DiscardingBody { .. } => State::DiscardingBody,
            Stage::Closing => State::Closing,
            Stage::Lingering => State::Lingering,
            Stage::Closed => State::Closed,
        }
    }

    /// The exchange in hand, in the states that have one.
    fn exchange(&self) -> Option<&Exchange> {
        match self {
            Stage::AwaitingAnswer { exchange, .. }
            | Stage::ReadingBody { exchange, .. }
            | Stage::DiscardingBody { exchange, .. } => Some(exchange),
            _ => None,
        }
    }

    fn exchange_mut(&mut self) -> Option<&mut Exchange> {
        match self {
            Stage::AwaitingAnswer { exchange, .. }
            | Stage::ReadingBody { exchange, .. }
            | Stage::DiscardingBody { exchange, .. } => Some(exchange),
            _ => None,
        }
    }

    /// Whether a body is still to be read (for the application, or to drop).
    fn body_unread(&self) -> bool {
        matches!(
            self,
            Stage::AwaitingAnswer { body: Some(_), .. }
                | Stage::ReadingBody { body: Some(_), .. }
                | Stage::DiscardingBody { .. }
        )
    }
}

impl Busy {
    fn new(stage: Stage, now: Instant) -> Busy {
        Busy {
            stage,
            handed_out: 0,
            failure: None,
            output: WriteQueue::new(),
            last_read: now,
            last_write: now,
        }
    }

    /// The state it may rest in, if it holds nothing a resting connection
    /// would need.
    fn rest(&self) -> Option<Rest> {
        let spent = self.handed_out == 0 && self.failure.is_none() && self.output.is_empty();
        match self.stage {
            Stage::Idle if spent => Some(Rest::Idle),
            Stage::Lingering if spent => Some(Rest::Lingering),
            Stage::Closed if spent => Some(Rest::Closed),
            _ => None,
        }
    }
}

/// The output of a connection with nothing queued.
static NO_OUTPUT: WriteQueue = WriteQueue::new();

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("state", &self.state())
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
            settings,
            input: InputBuffer::default(),
            exchanges: 0,
            peer_closed: false,
            draining: false,
            linger: false,
            shutdown_requested: false,
            served: 0,
            clock: now,
            accepted: now,
            since: now,
            busy: None,
            resting: Rest::Idle,
        }
    }

    /// The working part, made if the connection was resting (in the state it
    /// rested in).
    fn busy(&mut self) -> &mut Busy {
        let (rest, clock) = (self.resting, self.clock);
        self.busy.get_or_insert_with(|| {
            let stage = match rest {
                Rest::Idle => Stage::Idle,
                Rest::Lingering => Stage::Lingering,
                Rest::Closed => Stage::Closed,
            };
            Box::new(Busy::new(stage, clock))
        })
    }

    /// The working part, if it has one.
    fn busy_ref(&self) -> Option<&Busy> {
        self.busy.as_deref()
    }

    fn busy_mut(&mut self) -> Option<&mut Busy> {
        self.busy.as_deref_mut()
    }

    /// Back at rest with nothing in hand and nothing to send: the working
    /// part goes.
    fn rest_if_spent(&mut self) {
        let Some((rest, last_write)) = self
            .busy_ref()
            .and_then(|busy| Some((busy.rest()?, busy.last_write)))
        else {
            return;
        };
        if rest == Rest::Idle {
            // The keep-alive timeout counts from the later of the two.
            self.since = self.since.max(last_write);
        }
        self.busy = None;
        self.resting = rest;
    }

    pub(crate) fn state(&self) -> State {
        match (&self.busy, self.resting) {
            (Some(busy), _) => busy.stage.state(),
            (None, Rest::Idle) => State::Idle,
            (None, Rest::Lingering) => State::Lingering,
            (None, Rest::Closed) => State::Closed,
        }
    }

    /// Moves to `stage`, with its parts.
    fn enter(&mut self, stage: Stage) {
        let (from, to) = (self.state(), stage.state());
        if from != to {
            log::trace!("#{}: {from:?} -> {to:?}", self.id);
            self.since = self.clock;
        }
        self.busy().stage = stage;
    }

    /// Moves to a state with no parts, at rest if nothing else is held.
    fn enter_bare(&mut self, stage: Stage) {
        self.enter(stage);
        self.rest_if_spent();
    }

    /// Moves to the stage `next` makes of the current one's parts.
    fn advance(&mut self, next: impl FnOnce(Stage) -> Stage) {
        let from = self.state();
        let busy = self.busy();
        let current = std::mem::replace(&mut busy.stage, Stage::Closed);
        busy.stage = next(current);
        let to = busy.stage.state();
        if from != to {
            log::trace!("#{}: {from:?} -> {to:?}", self.id);
            self.since = self.clock;
        }
    }

    // ----- input -------------------------------------------------------------

    /// Whether the driver should read from the socket now.
    pub(crate) fn wants_read(&self) -> bool {
        if self.peer_closed || self.input.len() >= self.input_bound() {
            return false;
        }
        match self.state() {
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

    /// The driver's name for it (its token).
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// The bytes received and not yet read, for a session that looks for
    /// HTTP/2's preface before any request is read.
    pub(crate) fn received_data(&self) -> &[u8] {
        self.input.data()
    }

    /// Whether nothing has happened yet that HTTP/1.1 would have to answer:
    /// no request begun or refused, nothing queued.
    pub(crate) fn untouched(&self) -> bool {
        self.exchanges == 0 && self.state() == State::Idle && !self.has_output()
    }

    /// The input, with what it holds, for the HTTP/2 core to take over.
    pub(crate) fn take_input(&mut self) -> InputBuffer {
        std::mem::take(&mut self.input)
    }

    /// Hands the input buffer's storage back when it holds nothing, so an idle
    /// connection keeps no buffer.
    pub(crate) fn detach_idle_buffer(&mut self) -> Option<Vec<u8>> {
        if self.busy_ref().is_some_and(|busy| busy.handed_out > 0) {
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
    pub(crate) fn received(&mut self, n: usize, at: Instant) {
        self.clock = at;
        self.input.commit(n);
        if n > 0
            && let Some(busy) = self.busy_mut()
        {
            busy.last_read = at;
        }
        if matches!(self.state(), State::Lingering | State::Closed) {
            self.input.clear();
        }
    }

    /// Reports that the client closed its sending side. Requests already received
    /// are still answered (a client may send a request and then `shutdown(SHUT_WR)`).
    pub(crate) fn received_eof(&mut self, at: Instant) {
        self.clock = at;
        if !self.peer_closed {
            log::trace!("#{}: peer closed its side", self.id);
        }
        self.peer_closed = true;
        if self.state() == State::Lingering {
            self.enter_bare(Stage::Closed);
        }
    }

    fn consume_handed_out(&mut self) {
        let handed_out = self
            .busy_mut()
            .map_or(0, |busy| std::mem::take(&mut busy.handed_out));
        self.input.consume(handed_out);
    }

    /// Advances the machine as far as the input allows and says what happened.
    pub(crate) fn next_event(&mut self, now: Now<'_>) -> Event<'_> {
        self.clock = now.instant;
        self.consume_handed_out();
        if let Some(failure) = self.busy_mut().and_then(|busy| busy.failure.take()) {
            self.rest_if_spent();
            return Event::Failed(failure);
        }
        loop {
            let limits = self.settings.limits;
            let stage = match (&mut self.busy, self.resting) {
                (Some(busy), _) => Some(&mut busy.stage),
                (None, Rest::Idle) => None,
                (None, Rest::Lingering | Rest::Closed) => {
                    self.input.clear();
                    return Event::Pending;
                }
            };
            match stage {
                None | Some(Stage::Idle) => {
                    if let Some(event) = self.next_request() {
                        return event;
                    }
                }
                Some(Stage::ReadingHead(scanner)) => {
                    return match scanner.scan(self.input.data(), &limits) {
                        Err(error) => self.fail_now(error, now.date),
                        Ok(None) if self.peer_closed => {
                            self.fail_now(ProtocolError::Truncated, now.date)
                        }
                        Ok(None) => Event::Pending,
                        Ok(Some(len)) => self.start_exchange(len, now.date),
                    };
                }
                Some(Stage::ReadingBody { body: None, .. }) => {
                    if let Some(event) = self.end_of_body() {
                        return event;
                    }
                }
                Some(
                    Stage::ReadingBody {
                        body: Some(body), ..
                    }
                    | Stage::DiscardingBody { body, .. },
                ) => match body.decode(self.input.data()) {
                    Err(error) => return self.fail_now(error, now.date),
                    Ok(Decoded::Data { consumed, data }) => {
                        if self.state() == State::DiscardingBody {
                            self.input.consume(consumed);
                            continue;
                        }
                        if let Some(busy) = self.busy_mut() {
                            busy.handed_out = consumed;
                        }
                        return Event::Body(self.input.data().get(data).unwrap_or_default());
                    }
                    Ok(Decoded::Done { consumed }) => {
                        self.input.consume(consumed);
                        if let Some(event) = self.end_of_body() {
                            return event;
                        }
                    }
                    Ok(Decoded::NeedMore { consumed }) => {
                        self.input.consume(consumed);
                        if self.peer_closed {
                            return self.fail_now(ProtocolError::Truncated, now.date);
                        }
                        return Event::Pending;
                    }
                },
                Some(Stage::Lingering | Stage::Closed) => {
                    self.input.clear();
                    return Event::Pending;
                }
                Some(Stage::AwaitingAnswer { .. } | Stage::Closing) => return Event::Pending,
            }
        }
    }

    /// Idle: whether a request has begun (then the head is read next, and
    /// `None` says to go on), or what to say if not.
    fn next_request(&mut self) -> Option<Event<'static>> {
        if self.draining {
            self.close(false);
            return None;
        }
        if self.output_full() {
            return Some(Event::Pending);
        }
        self.skip_empty_lines();
        // A lone CR may be the first half of an empty line: until the
        // next byte says otherwise, no request has begun.
        if self.input.is_empty() || self.input.data() == b"\r" {
            if self.peer_closed {
                self.close(false);
            }
            self.rest_if_spent();
            return Some(Event::Pending);
        }
        self.enter(Stage::ReadingHead(HeadScanner::default()));
        None
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
            // The scanner said the head ends there: a bug, answered as one.
            None => Err(ProtocolError::Bug("a head longer than the input")),
        };
        let head = match parsed {
            Ok(head) => head,
            // The head stays in the buffer, for the failure to quote.
            Err(error) => return self.fail_now(error, date),
        };
        self.input.consume(head_len);
        self.exchanges += 1;
        let number = self.exchanges;
        match framing::semantics(&head, limits.max_body_bytes) {
            Ok(semantics) => {
                let body = BodyDecoder::new(semantics.framing, limits.max_body_bytes);
                let exchange = Exchange::new(number, semantics);
                // Still ReadingHead's: since it began.
                let began = self.since;
                self.enter(Stage::AwaitingAnswer { exchange, body });
                Event::Request {
                    exchange: number,
                    head,
                    began,
                }
            }
            Err(error) => {
                // The head parsed: the failure is quoted by its request line,
                // and a failing HEAD request gets no body either.
                let unhanded = Unhanded {
                    answer: Answer {
                        number,
                        version: head.version(),
                        is_head: head.method() == super::request::Method::Head,
                        keep_alive: false,
                    },
                    request_line: head.request_line(),
                };
                self.fail(error, Some(unhanded), date);
                self.failure_event()
            }
        }
    }

    /// The body is complete: the application hears of it if it asked for the
    /// body; if the body was being discarded, the exchange is simply over.
    fn end_of_body(&mut self) -> Option<Event<'static>> {
        match self.state() {
            State::ReadingBody => {
                self.advance(|stage| match stage {
                    Stage::ReadingBody { exchange, .. } => Stage::AwaitingAnswer {
                        exchange,
                        body: None,
                    },
                    other => other,
                });
                Some(Event::BodyEnd)
            }
            _ => {
                let keep_alive = self.exchange_keeps_alive();
                self.finish_exchange(keep_alive);
                None
            }
        }
    }

    // ----- answering ---------------------------------------------------------

    /// Asks for the current request's body: it will come as `Event::Body` pieces
    /// and an `Event::BodyEnd`. Sends `100 Continue` if the client waits for it.
    pub(crate) fn read_body(&mut self) {
        let waiting = self.busy_ref().map(|busy| &busy.stage);
        let Some(Stage::AwaitingAnswer { exchange, .. }) = waiting else {
            debug_assert!(false, "read_body without a request in hand");
            return;
        };
        if exchange.answered {
            debug_assert!(false, "read_body after the answer");
            return;
        }
        let mut interim = false;
        self.advance(|stage| match stage {
            Stage::AwaitingAnswer { mut exchange, body } => {
                if exchange.semantics.expects_continue && !exchange.continue_sent {
                    exchange.continue_sent = true;
                    interim = true;
                }
                Stage::ReadingBody { exchange, body }
            }
            other => other,
        });
        if interim {
            let line = format!("HTTP/1.1 {}\r\n\r\n", StatusCode::CONTINUE);
            self.busy().output.push_bytes(line.as_bytes());
        }
    }

    /// Queues the answer to the current request.
    pub(crate) fn respond(&mut self, response: Response, now: Now<'_>) {
        self.clock = now.instant;
        let draining = self.draining;
        let Some(busy) = self.busy_mut() else {
            debug_assert!(false, "respond without a request");
            return;
        };
        let body_unread = busy.stage.body_unread();
        let Some(exchange) = busy.stage.exchange_mut() else {
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
        let answer = Answer::to(exchange, keep_alive);
        self.queue_response(response, answer, now.date);

        if !body_unread {
            if self.state() == State::AwaitingAnswer {
                self.finish_exchange(keep_alive);
            }
        } else if keep_alive {
            self.advance(|stage| match stage {
                Stage::AwaitingAnswer {
                    exchange,
                    body: Some(body),
                }
                | Stage::ReadingBody {
                    exchange,
                    body: Some(body),
                }
                | Stage::DiscardingBody { exchange, body } => {
                    Stage::DiscardingBody { exchange, body }
                }
                other => other,
            });
        } else {
            self.close(true);
        }
    }

    fn exchange_keeps_alive(&self) -> bool {
        self.busy_ref()
            .and_then(|busy| busy.stage.exchange())
            .is_some_and(|e| e.semantics.keep_alive && !self.draining)
    }

    fn finish_exchange(&mut self, keep_alive: bool) {
        self.served += 1;
        if keep_alive {
            self.enter(Stage::Idle);
        } else {
            // Bytes the client sent after its last request will never be read.
            let unread = !self.input.is_empty();
            self.close(unread);
        }
    }

    /// Serializes the head, then the body unless the method or status forbid one.
    fn queue_response(&mut self, response: Response, answer: Answer, date: &str) {
        let Answer {
            number,
            version,
            is_head,
            keep_alive,
        } = answer;
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

        let clock = self.clock;
        let busy = self.busy();
        if busy.output.is_empty() {
            // The send timeout measures a stall in sending, which starts now.
            busy.last_write = clock;
        }
        busy.output.push_vec(head);
        let body_start = busy.output.queued();
        if !is_head && status.permits_body() {
            for chunk in body.into_chunks() {
                busy.output.push_chunk(chunk);
            }
        }
        busy.output.end_response(number, body_start);
        log::trace!("#{} req {number}: queued {status}", self.id);
    }

    /// Ends the exchange on a framing error: answers it (with the error's status)
    /// if it is still unanswered and someone is listening, then closes. The
    /// application hears of it as the next event. `unhanded` is a request
    /// whose head parsed but was never handed out (its framing was refused).
    fn fail(&mut self, error: ProtocolError, unhanded: Option<Unhanded>, date: &str) {
        match error {
            ProtocolError::Bug(_) => log::error!("#{}: {error}", self.id),
            _ => log::debug!("#{}: {error}", self.id),
        }
        let head_began = (self.state() == State::ReadingHead).then_some(self.since);
        let in_hand = self
            .busy_ref()
            .and_then(|busy| busy.stage.exchange())
            .map(|e| (e.answered, Answer::to(e, false)));
        let mut unseen_request = None;
        let answer = match (in_hand, unhanded) {
            (Some((answered, answer)), _) => (!answered).then_some(answer),
            (None, Some(unhanded)) => {
                unseen_request = Some(unhanded.request_line);
                Some(unhanded.answer)
            }
            (None, None) => {
                // A head that never parsed: quoted by what arrived of it.
                self.exchanges += 1;
                unseen_request = Some(self.first_line_received());
                Some(Answer::failed(self.exchanges, self.input.data()))
            }
        };
        let mut answered_as = None;
        if let (Some(answer), Some(status)) = (answer, error.status()) {
            answered_as = Some(answer.number);
            self.queue_response(Response::error(status).closing(), answer, date);
        }
        self.busy().failure = Some(Failure {
            error,
            answered_as,
            unseen_request,
            head_began,
        });
        self.input.clear();
        self.close(error != ProtocolError::Truncated && error != ProtocolError::TimedOut);
    }

    /// [`fail`](Self::fail), told to the application at once.
    fn fail_now(&mut self, error: ProtocolError, date: &str) -> Event<'static> {
        self.fail(error, None, date);
        self.failure_event()
    }

    fn failure_event(&mut self) -> Event<'static> {
        let failure = self.busy_mut().and_then(|busy| busy.failure.take());
        self.rest_if_spent();
        match failure {
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
    /// the client may still be sending). Whatever request was in hand is
    /// dropped with its parts.
    fn close(&mut self, linger: bool) {
        self.linger = linger && !self.peer_closed;
        if !matches!(
            self.state(),
            State::Closing | State::Lingering | State::Closed
        ) {
            self.enter(Stage::Closing);
        }
        self.after_output_change();
    }

    fn after_output_change(&mut self) {
        if self.state() == State::Closing && self.output().is_empty() {
            if self.linger {
                self.shutdown_requested = true;
                self.enter_bare(Stage::Lingering);
            } else {
                self.enter_bare(Stage::Closed);
            }
        }
    }

    // ----- output ------------------------------------------------------------

    /// What is waiting to be written.
    pub(crate) fn output(&self) -> &WriteQueue {
        self.busy_ref().map_or(&NO_OUTPUT, |busy| &busy.output)
    }

    /// Whether anything waits to be written (nothing does once closed).
    pub(crate) fn has_output(&self) -> bool {
        self.state() != State::Closed && !self.output().is_empty()
    }

    /// Reports that the driver wrote `n` bytes from the front of the output;
    /// each response whose last byte that was is reported to `delivered`.
    pub(crate) fn written(&mut self, n: usize, at: Instant, delivered: &mut impl FnMut(Delivered)) {
        self.clock = at;
        if n > 0
            && let Some(busy) = self.busy_mut()
        {
            busy.last_write = at;
            busy.output.advance(n, delivered);
        }
        self.after_output_change();
        self.rest_if_spent();
    }

    /// Once closed: drops what was still queued, reporting the responses it cut
    /// short to `delivered` (with the body bytes that did leave).
    pub(crate) fn abandon_output(&mut self, delivered: &mut impl FnMut(Delivered)) {
        if self.state() == State::Closed
            && let Some(busy) = self.busy_mut()
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
        self.state() == State::Closed
    }

    /// Requests answered completely on this connection.
    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Graceful shutdown: finish the exchange in hand with `Connection: close`,
    /// start no other; an idle connection closes at once.
    pub(crate) fn drain(&mut self) {
        self.draining = true;
        if self.state() == State::Idle && self.input.is_empty() {
            self.close(false);
        }
    }

    // ----- time --------------------------------------------------------------

    /// When [`on_deadline`](Self::on_deadline) must next be called, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let t = &self.settings.timeouts;
        let (last_read, last_write) = self.busy_ref().map_or((self.since, self.since), |busy| {
            (busy.last_read, busy.last_write)
        });
        let sending = self.has_output().then(|| last_write + t.send);
        let reading = match self.state() {
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
    pub(crate) fn on_deadline(&mut self, now: Now<'_>) {
        self.clock = now.instant;
        let t = self.settings.timeouts;
        let last_write = self.busy_ref().map_or(self.since, |busy| busy.last_write);
        if self.has_output() && now.instant >= last_write + t.send {
            log::debug!("#{}: client stopped reading; closing", self.id);
            self.abort();
            return;
        }
        let Some(deadline) = self.deadline() else {
            return;
        };
        if now.instant < deadline {
            return;
        }
        match self.state() {
            State::Idle => {
                log::trace!("#{}: idle timeout", self.id);
                self.close(false);
            }
            State::ReadingHead | State::ReadingBody => {
                self.fail(ProtocolError::TimedOut, None, now.date);
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
        if self.state() != State::Idle || self.exchanges > 0 || !self.input.is_empty() {
            return None;
        }
        self.clock = now.instant;
        self.exchanges += 1;
        let number = self.exchanges;
        self.queue_response(response.closing(), Answer::failed(number, &[]), now.date);
        self.close(true);
        Some(number)
    }

    /// A bug (a panic) interrupted the work on this connection: the request in
    /// hand, if it has no answer yet, gets `500` (after any responses queued
    /// before it) and the connection closes; if its answer was already queued,
    /// or no request is in hand, the connection closes at once. Returns the
    /// exchange answered with `500`, if one was.
    pub(crate) fn recover_from_bug(&mut self, now: Now<'_>) -> Option<u64> {
        let unanswered = self
            .busy_ref()
            .and_then(|busy| busy.stage.exchange())
            .filter(|e| !e.answered)
            .map(|e| e.number);
        match unanswered {
            Some(number) => {
                let answer = Response::error(StatusCode::INTERNAL_SERVER_ERROR).closing();
                self.respond(answer, now);
                Some(number)
            }
            None => {
                self.abort();
                None
            }
        }
    }

    /// Closes at once, dropping whatever was queued.
    pub(crate) fn abort(&mut self) {
        self.input.clear();
        self.enter_bare(Stage::Closed);
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
