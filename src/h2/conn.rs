//! One HTTP/2 connection, as a state machine that never touches a socket:
//! the HTTP/1.1 core's twin, with the same verbs for the [`Session`].
//!
//! # Theory of operation
//!
//! Bytes come in through the same lent buffer as HTTP/1.1's; each whole
//! frame is parsed (`frame.rs`), and what it means for the connection and
//! its streams is decided here. What the application must hear of comes out
//! of [`next_event`](Connection::next_event) as it does from the HTTP/1.1
//! core, but with a stream: a request (its HEADERS, decoded by HPACK and made
//! into the same `RequestHead`), pieces of its body (DATA), its end, or that
//! the stream is gone. The application answers each request with
//! [`respond`](Connection::respond), at once or after its body.
//!
//! Out goes one write queue (`http/output.rs`), the very one HTTP/1.1 fills,
//! so every driver sends it as it sends HTTP/1.1: writev for memory, sendfile
//! for a file range. What is new is who fills it: control frames and response
//! HEADERS go in at once; DATA frames are cut from each stream's body by
//! [`fill`](Connection::fill) only while the queue is short and the
//! flow-control windows (the connection's and the stream's) allow, one frame
//! per stream in turn. A DATA frame of a file is a 9-byte head in memory and
//! a range of the file, so a 1 GiB download costs a file descriptor and a
//! queue entry, and a stream whose window is shut costs its place in the
//! table, no buffer.
//!
//! # States
//!
//! ```text
//!  Preface ──24 bytes and SETTINGS──▶ Open ──GOAWAY sent or received, streams done──▶ Closing
//!  Closing ── output flushed ──▶ Lingering (our side shut, the peer's bytes dropped) ──▶ Closed
//!  any ── abort (reset, send timeout) ──▶ Closed
//! ```
//!
//! A stream's own states (section 5.1) are `stream.rs`'s two flags.
//!
//! [`Session`]: crate::session::Session

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::budget::{Budget, Overspent};
use super::error::{ErrorCode, H2Error};
use super::frame::{self, Frame, Head, Kind, Setting};
use super::hpack::Decoder;
use super::request::{Collector, Refusal};
use super::response;
use super::stream::{DRAIN_ALLOWANCE, Stream};
use crate::http::{
    Delivered, InputBuffer, Now, ProtocolError, READ_SIZE, RequestHead, Response, Settings, State,
    StatusCode, WriteQueue,
};

/// The client's connection preface (section 3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Streams a client may have open at once (our SETTINGS_MAX_CONCURRENT_STREAMS).
pub(crate) const MAX_STREAMS: usize = 100;
/// The window we give each stream for its request body, and the
/// connection for all of them. Bodies go to the application as they come
/// (nothing is buffered for them), so a wide window costs no memory.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
/// DATA frames are framed into the write queue until this much is unsent:
/// enough for the socket to stay busy, little enough that a control frame
/// (a PING's answer, a WINDOW_UPDATE) never waits behind a file.
const FILL_MARK: u64 = 64 * 1024;
/// A header block and its CONTINUATIONs: at most this many frames (the
/// defence against CVE-2024-27316, a block that never ends). Its bytes are
/// bounded by twice the header list's bound.
const MAX_CONTINUATIONS: u32 = 32;
/// Closed streams remembered, to tell a late frame on one (ignored if we
/// reset it, STREAM_CLOSED if not) from a frame on one never opened.
const CLOSED_REMEMBERED: usize = 64;
/// Past this stream id the client is told to go elsewhere (GOAWAY), so it
/// opens a new connection before its ids run out (2^31 - 1).
const LAST_USABLE_STREAM: u32 = (1 << 31) - 1 - 2 * MAX_STREAMS as u32;

/// The most input an HTTP/2 connection holds, with `--max-head-bytes` at
/// `max_head_bytes`: HTTP/1.1's bound, or one whole frame of our largest.
pub(crate) fn input_bound(max_head_bytes: usize) -> usize {
    let largest_frame = frame::HEAD_LEN + frame::DEFAULT_MAX_FRAME_SIZE as usize;
    max_head_bytes.max(READ_SIZE).max(largest_frame)
}

/// What the application is told, one at a time, in order.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// A new request on `stream`: answer it with `respond`, or ask for its
    /// body with `read_body`.
    Request {
        stream: u32,
        exchange: u64,
        head: RequestHead,
        began: Instant,
    },
    /// A piece of the body asked for.
    Body { stream: u32, data: &'a [u8] },
    /// The body asked for is complete: answer with `respond`.
    BodyEnd { stream: u32 },
    /// The body asked for did not arrive whole: answer `error`'s status
    /// (the application drops what it held).
    BodyFailed { stream: u32, error: ProtocolError },
    /// The stream is gone (reset, or its body malformed) while the
    /// application held it: drop what it held; no answer is wanted.
    Cancelled { stream: u32 },
    /// A request refused before the application saw it, already answered
    /// with `status`: for the access log.
    Refused {
        exchange: u64,
        request_line: String,
        status: StatusCode,
        began: Instant,
    },
    /// Nothing until more input arrives, output drains, or a timeout passes.
    Pending,
}

/// The owned events, waiting their turn.
type Told = Event<'static>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Preface,
    Open,
    Closing { linger: bool },
    Lingering,
    Closed,
}

/// What the peer's SETTINGS said, of what matters to us.
#[derive(Debug)]
struct PeerSettings {
    max_frame_size: u32,
    initial_window: i64,
}

/// A header block still arriving in CONTINUATION frames.
#[derive(Debug)]
struct Gathering {
    stream: u32,
    end_stream: bool,
    self_dependent: bool,
    block: Vec<u8>,
    frames: u32,
}

/// What one frame asks of `next_event`.
enum Outcome {
    Nothing,
    Told(Told),
    /// A DATA frame's data for the application: where it is in the frame.
    Body {
        stream: u32,
        at: std::ops::Range<usize>,
    },
}

pub(crate) struct Connection {
    id: usize,
    settings: Arc<Settings>,
    input: InputBuffer,
    output: WriteQueue,
    phase: Phase,
    /// The first frame after the preface must be SETTINGS.
    settings_seen: bool,
    peer: PeerSettings,
    decoder: Decoder,
    streams: BTreeMap<u32, Stream>,
    /// The highest stream id the peer has used.
    last_stream: u32,
    /// Recently closed streams, and whether we reset them.
    closed: VecDeque<(u32, bool)>,
    /// Streams with DATA to frame, in turn.
    ready: VecDeque<u32>,
    gathering: Option<Gathering>,
    /// What we may send on the connection, and what the peer may.
    send_window: i64,
    recv_window: i64,
    recv_unacked: u32,
    /// Events waiting for the application, and how many input bytes the
    /// last `Event::Body` lent out (consumed at the next call).
    told: VecDeque<Told>,
    handed_out: usize,
    /// Responses that will never be delivered whole (their streams were
    /// reset), for the access log.
    cut_short: Vec<Delivered>,
    budget: Budget,
    exchanges: u64,
    served: u64,
    /// We sent a GOAWAY (a graceful stop, or an error): no new streams.
    goaway_sent: bool,
    /// The peer sent one, or closed its side: no new streams will come.
    peer_done: bool,
    peer_closed: bool,
    shutdown_requested: bool,
    clock: Instant,
    accepted: Instant,
    /// Since when it has had no stream (the keep-alive timeout's start).
    idle_since: Instant,
    last_read: Instant,
    last_write: Instant,
    since: Instant,
}

impl Connection {
    /// A connection whose first bytes (the preface, perhaps more) are in
    /// `input`: the server's SETTINGS go out at once.
    pub(crate) fn new(
        id: usize,
        settings: Arc<Settings>,
        input: InputBuffer,
        now: Instant,
    ) -> Connection {
        log::trace!("#{id}: HTTP/2");
        let mut output = WriteQueue::new();
        let mut greeting = Vec::with_capacity(64);
        let list_size = u32::try_from(settings.limits.max_head_bytes).unwrap_or(u32::MAX);
        frame::push_settings(
            &mut greeting,
            &[
                (frame::SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS as u32),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, list_size),
            ],
        );
        frame::push_window_update(&mut greeting, 0, CONNECTION_WINDOW - frame::DEFAULT_WINDOW);
        output.push_vec(greeting);
        Connection {
            id,
            settings,
            input,
            output,
            phase: Phase::Preface,
            settings_seen: false,
            peer: PeerSettings {
                max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
                initial_window: i64::from(frame::DEFAULT_WINDOW),
            },
            decoder: Decoder::new(),
            streams: BTreeMap::new(),
            last_stream: 0,
            closed: VecDeque::new(),
            ready: VecDeque::new(),
            gathering: None,
            send_window: i64::from(frame::DEFAULT_WINDOW),
            recv_window: i64::from(CONNECTION_WINDOW),
            recv_unacked: 0,
            told: VecDeque::new(),
            handed_out: 0,
            cut_short: Vec::new(),
            budget: Budget::new(now),
            exchanges: 0,
            served: 0,
            goaway_sent: false,
            peer_done: false,
            peer_closed: false,
            shutdown_requested: false,
            clock: now,
            accepted: now,
            idle_since: now,
            last_read: now,
            last_write: now,
            since: now,
        }
    }

    // ----- input -------------------------------------------------------------

    /// The most input held: what HTTP/1.1 may hold, and at least one whole
    /// frame of the largest size we allow.
    fn input_bound(&self) -> usize {
        input_bound(self.settings.limits.max_head_bytes)
    }

    /// Backpressure: a peer that does not read what we send (PING answers,
    /// responses) gets nothing more of its read.
    fn output_full(&self) -> bool {
        self.output.buffered_bytes() >= self.settings.limits.max_queued_bytes
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Preface | Phase::Open => {
                !self.peer_closed && self.input.len() < self.input_bound() && !self.output_full()
            }
            Phase::Lingering => !self.peer_closed,
            Phase::Closing { .. } | Phase::Closed => false,
        }
    }

    pub(crate) fn has_buffer(&self) -> bool {
        self.input.has_storage()
    }

    pub(crate) fn attach_buffer(&mut self, storage: Vec<u8>) {
        self.input.attach(storage);
    }

    pub(crate) fn detach_idle_buffer(&mut self) -> Option<Vec<u8>> {
        if self.handed_out > 0 {
            return None;
        }
        self.input.detach_if_empty()
    }

    pub(crate) fn read_buffer(&mut self) -> &mut [u8] {
        self.input.consume(std::mem::take(&mut self.handed_out));
        let bound = self.input_bound();
        self.input.spare(bound)
    }

    pub(crate) fn received(&mut self, n: usize, at: Instant) {
        self.clock = at;
        self.input.commit(n);
        if n > 0 {
            self.last_read = at;
        }
        if matches!(self.phase, Phase::Lingering | Phase::Closed) {
            self.input.clear();
        }
    }

    pub(crate) fn received_eof(&mut self, at: Instant) {
        self.clock = at;
        if !self.peer_closed {
            log::trace!("#{}: peer closed its side", self.id);
        }
        self.peer_closed = true;
        self.peer_done = true;
        if self.phase == Phase::Lingering {
            self.enter(Phase::Closed);
        }
    }

    #[cfg(any(test, feature = "harness"))]
    pub(crate) fn buffered_input(&self) -> usize {
        self.input.len()
    }

    // ----- events ------------------------------------------------------------

    /// Advances the machine as far as the input allows and says what happened.
    pub(crate) fn next_event(&mut self, now: Now<'_>) -> Event<'_> {
        self.clock = now.instant;
        self.input.consume(std::mem::take(&mut self.handed_out));
        loop {
            if let Some(told) = self.told.pop_front() {
                return told;
            }
            match self.phase {
                Phase::Closing { .. } | Phase::Lingering | Phase::Closed => {
                    self.input.clear();
                    self.after_change();
                    return Event::Pending;
                }
                Phase::Preface => {
                    let data = self.input.data();
                    if data.len() < PREFACE.len() {
                        if self.peer_closed || !PREFACE.starts_with(data) {
                            self.enter(Phase::Closed);
                        }
                        return Event::Pending;
                    }
                    if data.get(..PREFACE.len()) != Some(&PREFACE[..]) {
                        log::debug!("#{}: not an HTTP/2 preface", self.id);
                        self.enter(Phase::Closed);
                        return Event::Pending;
                    }
                    self.input.consume(PREFACE.len());
                    self.enter(Phase::Open);
                }
                Phase::Open => {}
            }
            if self.output_full() {
                return Event::Pending;
            }
            let Some(head) = Head::read(self.input.data()) else {
                return self.wait_for_input();
            };
            if head.len > frame::DEFAULT_MAX_FRAME_SIZE {
                self.connection_error(ErrorCode::FRAME_SIZE_ERROR, "a frame over our size");
                continue;
            }
            let total = frame::HEAD_LEN + head.len as usize;
            if self.input.len() < total {
                return self.wait_for_input();
            }
            // The frame is parsed from the input while the rest of the
            // connection changes: the buffer is lent out of it meanwhile.
            let input = std::mem::take(&mut self.input);
            let payload = input.data().get(frame::HEAD_LEN..total).unwrap_or_default();
            let outcome = match self.on_frame(head, payload, now) {
                Ok(outcome) => outcome,
                Err(error) => {
                    self.on_error(error);
                    Outcome::Nothing
                }
            };
            let storage_was_lent = self.input.has_storage();
            debug_assert!(!storage_was_lent, "the input was replaced while lent");
            self.input = input;
            match outcome {
                Outcome::Nothing => self.input.consume(total),
                Outcome::Told(told) => {
                    self.input.consume(total);
                    self.after_change();
                    return told;
                }
                Outcome::Body { stream, at } => {
                    self.handed_out = total;
                    let start = frame::HEAD_LEN + at.start;
                    let end = frame::HEAD_LEN + at.end;
                    let data = self.input.data().get(start..end).unwrap_or_default();
                    return Event::Body { stream, data };
                }
            }
            self.after_change();
        }
    }

    /// No whole frame yet: wait, unless the peer has gone.
    fn wait_for_input(&mut self) -> Event<'static> {
        if self.peer_closed {
            self.peer_gone();
        }
        Event::Pending
    }

    /// The peer closed its side: streams whose bodies will never come are
    /// failed; the rest are answered, then the connection closes.
    fn peer_gone(&mut self) {
        for id in self.streams_that(Stream::reading) {
            self.forget(id, false);
            self.told.push_back(Event::Cancelled { stream: id });
        }
        self.after_change();
    }

    /// The ids of the streams in `state` (`Stream::reading`, say).
    fn streams_that(&self, state: impl Fn(&Stream) -> bool) -> Vec<u32> {
        self.streams
            .iter()
            .filter(|(_, s)| state(s))
            .map(|(&id, _)| id)
            .collect()
    }

    fn on_frame(&mut self, head: Head, payload: &[u8], now: Now<'_>) -> Result<Outcome, H2Error> {
        let frame = frame::parse(head, payload)?;
        if let Some(gathering) = &self.gathering {
            let stream = gathering.stream;
            if !matches!(frame, Frame::Continuation { stream: s, .. } if s == stream) {
                return Err(H2Error::Connection(
                    ErrorCode::PROTOCOL_ERROR,
                    "a frame inside a header block",
                ));
            }
        }
        if !self.settings_seen && !matches!(frame, Frame::Settings { ack: false, .. }) {
            return Err(H2Error::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "the preface's SETTINGS missing",
            ));
        }
        match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => {
                // Where `data` is in the payload, for the event.
                let offset = data.as_ptr() as usize - payload.as_ptr() as usize;
                self.on_data(stream, end_stream, offset..offset + data.len(), flow_len)
            }
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
                self_dependent,
            } => {
                if end_headers {
                    return self.on_block(stream, end_stream, self_dependent, block, now);
                }
                self.gathering = Some(Gathering {
                    stream,
                    end_stream,
                    self_dependent,
                    block: block.to_vec(),
                    frames: 1,
                });
                Ok(Outcome::Nothing)
            }
            Frame::Continuation {
                end_headers, block, ..
            } => {
                let bound = 2 * self.settings.limits.max_head_bytes;
                let Some(gathering) = self.gathering.as_mut() else {
                    return Err(H2Error::Connection(
                        ErrorCode::PROTOCOL_ERROR,
                        "CONTINUATION without HEADERS",
                    ));
                };
                gathering.frames += 1;
                gathering.block.extend_from_slice(block);
                if gathering.frames > MAX_CONTINUATIONS || gathering.block.len() > bound {
                    return Err(H2Error::Connection(
                        ErrorCode::ENHANCE_YOUR_CALM,
                        "a header block too long",
                    ));
                }
                if !end_headers {
                    return Ok(Outcome::Nothing);
                }
                let Some(done) = self.gathering.take() else {
                    return Ok(Outcome::Nothing);
                };
                self.on_block(
                    done.stream,
                    done.end_stream,
                    done.self_dependent,
                    &done.block,
                    now,
                )
            }
            Frame::Priority { .. } => self.chatter(),
            Frame::RstStream { stream, code } => self.on_reset(stream, code),
            Frame::Settings { ack: true, .. } => Ok(Outcome::Nothing),
            Frame::Settings {
                ack: false,
                settings,
            } => {
                if std::mem::replace(&mut self.settings_seen, true) {
                    self.chatter()?;
                }
                for setting in settings {
                    self.apply(setting)?;
                }
                let mut ack = Vec::with_capacity(frame::HEAD_LEN);
                frame::push(&mut ack, Kind::Settings, frame::ACK, 0, &[]);
                self.output.push_vec(ack);
                self.fill();
                Ok(Outcome::Nothing)
            }
            Frame::Ping { ack: true, .. } => Ok(Outcome::Nothing),
            Frame::Ping { ack: false, data } => {
                self.chatter()?;
                let mut pong = Vec::with_capacity(frame::HEAD_LEN + 8);
                frame::push(&mut pong, Kind::Ping, frame::ACK, 0, &data);
                self.output.push_vec(pong);
                Ok(Outcome::Nothing)
            }
            Frame::GoAway { last_stream, code } => {
                log::debug!(
                    "#{}: GOAWAY from the peer: {code:?}, last stream {last_stream}",
                    self.id
                );
                self.peer_done = true;
                Ok(Outcome::Nothing)
            }
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
            Frame::Unknown => self.chatter(),
        }
    }

    fn chatter(&mut self) -> Result<Outcome, H2Error> {
        match self.budget.chatter(self.clock) {
            Ok(()) => Ok(Outcome::Nothing),
            Err(Overspent::Chatter | Overspent::Resets) => Err(H2Error::Connection(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many frames that do nothing",
            )),
        }
    }

    fn apply(&mut self, setting: Setting) -> Result<(), H2Error> {
        let error = |code, why| Err(H2Error::Connection(code, why));
        match setting {
            Setting::EnablePush(value) if value > 1 => {
                return error(ErrorCode::PROTOCOL_ERROR, "ENABLE_PUSH neither 0 nor 1");
            }
            Setting::InitialWindowSize(value) => {
                let value = i64::from(value);
                if value > frame::MAX_WINDOW {
                    return error(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "INITIAL_WINDOW_SIZE too large",
                    );
                }
                // Section 6.9.2: the change applies to every stream's window.
                let delta = value - self.peer.initial_window;
                self.peer.initial_window = value;
                for stream in self.streams.values_mut() {
                    stream.send_window += delta;
                    if stream.send_window > frame::MAX_WINDOW {
                        return error(ErrorCode::FLOW_CONTROL_ERROR, "a window past 2^31-1");
                    }
                }
                let ready = self.streams_that(|s| s.can_send() && !s.scheduled);
                for id in ready {
                    self.schedule(id);
                }
            }
            Setting::MaxFrameSize(value) => {
                if !(frame::DEFAULT_MAX_FRAME_SIZE..=frame::MAX_MAX_FRAME_SIZE).contains(&value) {
                    return error(ErrorCode::PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range");
                }
                self.peer.max_frame_size = value;
            }
            // Our encoder never indexes, so the peer's table size is no
            // concern of ours; we push nothing and open no streams.
            Setting::HeaderTableSize(_)
            | Setting::EnablePush(_)
            | Setting::MaxConcurrentStreams(_)
            | Setting::MaxHeaderListSize(_)
            | Setting::Unknown => {}
        }
        Ok(())
    }

    /// Whether `stream` was used and is closed now: `Some(we reset it)`.
    fn closed_stream(&self, stream: u32) -> Option<bool> {
        self.closed
            .iter()
            .find(|(id, _)| *id == stream)
            .map(|&(_, by_us)| by_us)
    }

    fn is_idle(&self, stream: u32) -> bool {
        stream > self.last_stream && !self.streams.contains_key(&stream)
    }

    fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        at: std::ops::Range<usize>,
        flow_len: u32,
    ) -> Result<Outcome, H2Error> {
        let flow = i64::from(flow_len);
        if flow > self.recv_window {
            return Err(H2Error::Connection(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA past the connection's window",
            ));
        }
        self.recv_window -= flow;
        // The connection's window is given back whatever becomes of the
        // frame: nothing of it is kept.
        self.give_back(flow_len);
        if self.is_idle(id) {
            return Err(H2Error::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "DATA on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return match self.closed_stream(id) {
                Some(true) => Ok(Outcome::Nothing),
                _ => Err(H2Error::Stream(
                    id,
                    ErrorCode::STREAM_CLOSED,
                    "DATA on a closed stream",
                )),
            };
        };
        if stream.remote_ended {
            return Err(H2Error::Stream(
                id,
                ErrorCode::STREAM_CLOSED,
                "DATA after END_STREAM",
            ));
        }
        if flow > stream.recv_window {
            return Err(H2Error::Stream(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA past the stream's window",
            ));
        }
        stream.recv_window -= flow;
        stream.received += at.len() as u64;
        if stream
            .content_length
            .is_some_and(|length| stream.received > length)
        {
            return Err(H2Error::Stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "more DATA than content-length",
            ));
        }
        let wanted = stream.wants_body;
        if !wanted {
            // Nobody reads it (answered already): dropped, within the allowance.
            stream.drain_left = stream.drain_left.saturating_sub(at.len() as u64);
        }
        let drained_enough = stream.draining() && stream.drain_left == 0 && !end_stream;
        if drained_enough {
            log::debug!(
                "#{} s{id}: an unread body past {DRAIN_ALLOWANCE} bytes; reset",
                self.id
            );
            self.stop_draining(id);
            return Ok(Outcome::Nothing);
        }
        if wanted {
            // The application takes the bytes now: the stream's window
            // is given back as the connection's is.
            stream.recv_unacked += flow_len;
            if stream.recv_unacked >= STREAM_WINDOW / 2 && !end_stream {
                let increment = std::mem::take(&mut stream.recv_unacked);
                stream.recv_window += i64::from(increment);
                let mut update = Vec::with_capacity(13);
                frame::push_window_update(&mut update, id, increment);
                self.output.push_vec(update);
            }
        }
        if wanted && stream.received > self.settings.limits.max_body_bytes {
            // Answered 413 by the session; the stream is reset once that
            // answer is queued, the body's bytes until then dropped.
            stream.wants_body = false;
            stream.drain_left = 0;
            return Ok(Outcome::Told(Event::BodyFailed {
                stream: id,
                error: ProtocolError::BodyTooLarge,
            }));
        }
        if at.is_empty() && !end_stream {
            self.chatter()?;
        }
        if end_stream {
            self.end_of_body(id)?;
        }
        if wanted && !at.is_empty() {
            return Ok(Outcome::Body { stream: id, at });
        }
        Ok(Outcome::Nothing)
    }

    /// The connection's window, given back in WINDOW_UPDATEs of at least
    /// half of it.
    fn give_back(&mut self, flow_len: u32) {
        self.recv_unacked += flow_len;
        if self.recv_unacked >= CONNECTION_WINDOW / 2 {
            let increment = std::mem::take(&mut self.recv_unacked);
            self.recv_window += i64::from(increment);
            let mut update = Vec::with_capacity(13);
            frame::push_window_update(&mut update, 0, increment);
            self.output.push_vec(update);
        }
    }

    /// The peer ended its side of `id` (END_STREAM on DATA or trailers).
    fn end_of_body(&mut self, id: u32) -> Result<(), H2Error> {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if stream
            .content_length
            .is_some_and(|length| stream.received != length)
        {
            return Err(H2Error::Stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "less DATA than content-length",
            ));
        }
        stream.remote_ended = true;
        if stream.wants_body {
            stream.wants_body = false;
            self.told.push_back(Event::BodyEnd { stream: id });
        }
        if stream.local_ended {
            // It was draining: both sides are done now.
            self.forget(id, false);
        }
        Ok(())
    }

    fn on_block(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
        now: Now<'_>,
    ) -> Result<Outcome, H2Error> {
        let limits = self.settings.limits;
        let trailers = self.streams.contains_key(&id);
        let mut collector = if trailers {
            Collector::for_trailers()
        } else {
            Collector::for_request()
        };
        // Decoded whatever becomes of the stream: the table must stay in step.
        self.decoder
            .decode(block, &mut |name, value| {
                collector.field(name, value, &limits);
            })
            .map_err(|why| H2Error::Connection(ErrorCode::COMPRESSION_ERROR, why.0))?;
        if self_dependent {
            return Err(H2Error::Stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "a stream depends on itself",
            ));
        }
        if trailers {
            let remote_ended = self.streams.get(&id).is_some_and(|s| s.remote_ended);
            if remote_ended {
                return Err(H2Error::Stream(
                    id,
                    ErrorCode::STREAM_CLOSED,
                    "HEADERS after END_STREAM",
                ));
            }
            if !end_stream {
                // Section 8.1: a malformed request, a stream error.
                return Err(H2Error::Stream(
                    id,
                    ErrorCode::PROTOCOL_ERROR,
                    "trailers without END_STREAM",
                ));
            }
            if let Err(why) = collector.finish_trailers() {
                return Err(H2Error::Stream(id, ErrorCode::PROTOCOL_ERROR, why));
            }
            self.end_of_body(id)?;
            return Ok(Outcome::Nothing);
        }
        if id <= self.last_stream {
            return match self.closed_stream(id) {
                Some(true) => Ok(Outcome::Nothing),
                Some(false) => Err(H2Error::Connection(
                    ErrorCode::STREAM_CLOSED,
                    "HEADERS on a closed stream",
                )),
                None => Err(H2Error::Connection(
                    ErrorCode::PROTOCOL_ERROR,
                    "a stream id below one already used",
                )),
            };
        }
        if id.is_multiple_of(2) {
            return Err(H2Error::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "an even stream id from a client",
            ));
        }
        self.last_stream = id;
        if self.goaway_sent {
            // Past the last stream our GOAWAY named: ignored (section 6.8).
            return Ok(Outcome::Nothing);
        }
        if self.streams.len() >= MAX_STREAMS {
            self.remember_closed(id, true);
            self.reset_frame(id, ErrorCode::REFUSED_STREAM);
            return Ok(Outcome::Nothing);
        }
        let is_head = collector.is_head();
        let request = match collector.finish(&limits) {
            Ok(request) => request,
            Err(Refusal::Malformed(why)) => {
                return Err(H2Error::Stream(id, ErrorCode::PROTOCOL_ERROR, why));
            }
            Err(Refusal::Refused(error)) => {
                let line = String::from("-");
                return Ok(self.refuse(id, end_stream, is_head, error, line, now));
            }
        };
        if request
            .content_length
            .is_some_and(|length| length > limits.max_body_bytes)
        {
            let line = request.head.request_line();
            let error = ProtocolError::BodyTooLarge;
            return Ok(self.refuse(id, end_stream, is_head, error, line, now));
        }
        self.exchanges += 1;
        let mut stream = Stream::new(
            self.exchanges,
            i64::from(STREAM_WINDOW),
            self.peer.initial_window,
        );
        stream.remote_ended = end_stream;
        stream.content_length = request.content_length;
        stream.is_head = request.head.method() == crate::http::Method::Head;
        if end_stream && request.content_length.is_some_and(|length| length > 0) {
            return Err(H2Error::Stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "content-length but no DATA",
            ));
        }
        log::trace!(
            "#{} s{id}: {}{}",
            self.id,
            request.head.request_line(),
            if end_stream { "" } else { ", body follows" }
        );
        self.streams.insert(id, stream);
        if id >= LAST_USABLE_STREAM {
            self.goaway(ErrorCode::NO_ERROR, "stream ids running out");
        }
        Ok(Outcome::Told(Event::Request {
            stream: id,
            exchange: self.exchanges,
            head: request.head,
            began: self.clock,
        }))
    }

    /// A request the application will not see: answered here with the
    /// status HTTP/1.1 would give it.
    fn refuse(
        &mut self,
        id: u32,
        end_stream: bool,
        is_head: bool,
        error: ProtocolError,
        request_line: String,
        now: Now<'_>,
    ) -> Outcome {
        let status = error.status().unwrap_or(StatusCode::BAD_REQUEST);
        log::debug!("#{} s{id}: refused: {error}", self.id);
        self.exchanges += 1;
        let exchange = self.exchanges;
        let mut stream = Stream::new(exchange, i64::from(STREAM_WINDOW), self.peer.initial_window);
        stream.remote_ended = end_stream;
        stream.is_head = is_head;
        self.streams.insert(id, stream);
        self.respond(id, exchange, Response::error(status), now);
        Outcome::Told(Event::Refused {
            exchange,
            request_line,
            status,
            began: self.clock,
        })
    }

    fn on_reset(&mut self, id: u32, code: ErrorCode) -> Result<Outcome, H2Error> {
        if self.is_idle(id) {
            return Err(H2Error::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get(&id) else {
            return Ok(Outcome::Nothing);
        };
        log::trace!("#{} s{id}: reset by the peer: {code:?}", self.id);
        if stream.reading() {
            self.told.push_back(Event::Cancelled { stream: id });
        }
        self.forget(id, false);
        if self.budget.reset(self.clock).is_err() {
            return Err(H2Error::Connection(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many streams reset",
            ));
        }
        Ok(Outcome::Nothing)
    }

    fn on_window_update(&mut self, id: u32, increment: u32) -> Result<Outcome, H2Error> {
        let increment = i64::from(increment);
        if id == 0 {
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(H2Error::Connection(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "the connection's window past 2^31-1",
                ));
            }
            self.fill();
            return Ok(Outcome::Nothing);
        }
        if self.is_idle(id) {
            return Err(H2Error::Connection(
                ErrorCode::PROTOCOL_ERROR,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(Outcome::Nothing);
        };
        stream.send_window += increment;
        if stream.send_window > frame::MAX_WINDOW {
            return Err(H2Error::Stream(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "a stream's window past 2^31-1",
            ));
        }
        if stream.can_send() && !stream.scheduled {
            self.schedule(id);
            self.fill();
        }
        Ok(Outcome::Nothing)
    }

    fn on_error(&mut self, error: H2Error) {
        match error {
            H2Error::Connection(code, why) => self.connection_error(code, why),
            H2Error::Stream(id, code, why) => {
                log::debug!("#{} s{id}: {code:?}: {why}", self.id);
                let reading = self.streams.get(&id).is_some_and(Stream::reading);
                let known = self.streams.contains_key(&id);
                if known {
                    self.forget(id, true);
                } else {
                    self.remember_closed(id, true);
                    self.last_stream = self.last_stream.max(id);
                }
                self.reset_frame(id, code);
                if reading {
                    self.told.push_back(Event::Cancelled { stream: id });
                }
            }
        }
    }

    // ----- answering ---------------------------------------------------------

    /// Asks for the body of the request on `stream`: it comes as
    /// `Event::Body` pieces and an `Event::BodyEnd`.
    pub(crate) fn read_body(&mut self, id: u32) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.answered {
            debug_assert!(false, "read_body after the answer");
            return;
        }
        if stream.remote_ended {
            self.told.push_back(Event::BodyEnd { stream: id });
        } else {
            stream.wants_body = true;
        }
    }

    /// Queues the answer to the request on `stream`: its HEADERS at once,
    /// its body as DATA frames as the windows allow. A stream reset
    /// meanwhile takes no answer.
    pub(crate) fn respond(&mut self, id: u32, exchange: u64, response: Response, now: Now<'_>) {
        self.clock = now.instant;
        let hsts = self.settings.strict_transport_max_age;
        let frame_size = self.peer.max_frame_size as usize;
        let Some(stream) = self.streams.get_mut(&id) else {
            // Reset while the application worked: the log hears it went nowhere.
            self.cut_short.push(Delivered {
                exchange,
                body_bytes: 0,
                complete: false,
            });
            return;
        };
        if std::mem::replace(&mut stream.answered, true) {
            debug_assert!(false, "a stream answered twice");
            return;
        }
        stream.wants_body = false;
        let encoded = response::encode(response, stream.is_head, now.date, hsts);
        log::trace!("#{} s{id}: queued {}", self.id, encoded.status);
        if self.output.is_empty() {
            // The send timeout measures a stall in sending, which starts now.
            self.last_write = now.instant;
        }
        let ends = encoded.body.is_none();
        let mut frames = Vec::with_capacity(encoded.block.len() + frame::HEAD_LEN * 2);
        let mut pieces = encoded.block.chunks(frame_size).peekable();
        let mut kind = Kind::Headers;
        while let Some(piece) = pieces.next() {
            let mut flags = if pieces.peek().is_none() {
                frame::END_HEADERS
            } else {
                0
            };
            if kind == Kind::Headers && ends {
                flags |= frame::END_STREAM;
            }
            frame::push(&mut frames, kind, flags, id, piece);
            kind = Kind::Continuation;
        }
        self.output.push_vec(frames);
        match encoded.body {
            None => {
                self.output.end_stream_response(stream.exchange, 0);
                stream.local_ended = true;
                self.finish(id);
            }
            Some(body) => {
                stream.set_body(body.into_chunks(), frame_size);
                self.schedule(id);
                self.fill();
            }
        }
        self.after_change();
    }

    fn schedule(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id)
            && !stream.scheduled
        {
            stream.scheduled = true;
            self.ready.push_back(id);
        }
    }

    /// Frames DATA from the streams in turn while the queue is short and
    /// the windows allow.
    fn fill(&mut self) {
        if !matches!(self.phase, Phase::Open | Phase::Preface) {
            return;
        }
        while self.output.unsent() < FILL_MARK && self.send_window > 0 {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.scheduled = false;
            if !stream.can_send() {
                // A shut window: back in turn at its WINDOW_UPDATE.
                continue;
            }
            let allowed = stream
                .send_window
                .min(self.send_window)
                .min(i64::from(self.peer.max_frame_size));
            let n = stream.pending_len.min(allowed as u64);
            let ends = n == stream.pending_len;
            let flags = if ends { frame::END_STREAM } else { 0 };
            self.output
                .push_bytes(&frame::head(Kind::Data, flags, id, n as u32));
            let output = &mut self.output;
            stream.take(n, &mut |chunk| output.push_chunk(chunk));
            stream.send_window -= n as i64;
            self.send_window -= n as i64;
            if ends {
                let (exchange, body_len) = (stream.exchange, stream.body_len);
                self.output.end_stream_response(exchange, body_len);
                stream.local_ended = true;
                self.finish(id);
            } else if stream.send_window > 0 {
                stream.scheduled = true;
                self.ready.push_back(id);
            }
        }
    }

    /// Our side of `id` is done: the stream closes if the peer's is too.
    /// If the peer is still sending a body nobody wants, the stream drains
    /// it (`stream.rs`), or is reset with NO_ERROR at once if it has
    /// drained all it may.
    fn finish(&mut self, id: u32) {
        let Some(stream) = self.streams.get(&id) else {
            return;
        };
        if !stream.local_ended {
            return;
        }
        let (remote_ended, drain_left) = (stream.remote_ended, stream.drain_left);
        self.served += 1;
        self.budget.finished(self.clock);
        if remote_ended {
            self.forget(id, false);
        } else if drain_left == 0 {
            self.stop_draining(id);
        } else {
            log::trace!("#{} s{id}: answered; the body's rest is dropped", self.id);
        }
    }

    /// Section 8.1: the client is asked, without error, to stop sending a
    /// body whose answer is already sent.
    fn stop_draining(&mut self, id: u32) {
        self.forget(id, true);
        self.reset_frame(id, ErrorCode::NO_ERROR);
    }

    /// A stream closes before its response went whole (a reset, an error):
    /// what it had queued is dropped, and the access log hears of it.
    fn forget(&mut self, id: u32, by_us: bool) {
        let Some(stream) = self.streams.remove(&id) else {
            return;
        };
        if stream.answered && !stream.local_ended {
            self.cut_short.push(Delivered {
                exchange: stream.exchange,
                body_bytes: stream.sent,
                complete: false,
            });
        }
        self.remember_closed(id, by_us);
        self.note_if_idle();
    }

    fn note_if_idle(&mut self) {
        if self.streams.is_empty() {
            self.idle_since = self.clock;
        }
    }

    fn remember_closed(&mut self, id: u32, by_us: bool) {
        if self.closed.len() == CLOSED_REMEMBERED {
            self.closed.pop_front();
        }
        self.closed.push_back((id, by_us));
    }

    fn reset_frame(&mut self, id: u32, code: ErrorCode) {
        let mut reset = Vec::with_capacity(13);
        frame::push_rst_stream(&mut reset, id, code);
        self.output.push_vec(reset);
    }

    /// Responses cut short since the last call, for the access log.
    pub(crate) fn take_cut_short(&mut self, delivered: &mut impl FnMut(Delivered)) {
        for delivery in self.cut_short.drain(..) {
            delivered(delivery);
        }
    }

    // ----- ending ------------------------------------------------------------

    /// A GOAWAY naming the last stream we will answer; no new stream is
    /// started after it.
    fn goaway(&mut self, code: ErrorCode, why: &str) {
        if std::mem::replace(&mut self.goaway_sent, true) {
            return;
        }
        log::debug!("#{}: GOAWAY {code:?} ({why})", self.id);
        let mut goaway = Vec::with_capacity(frame::HEAD_LEN + 8 + why.len());
        frame::push_goaway(&mut goaway, self.last_stream, code, why);
        self.output.push_vec(goaway);
    }

    /// Section 5.4.1: GOAWAY with the error, every stream dropped, and the
    /// connection closes once that is sent.
    fn connection_error(&mut self, code: ErrorCode, why: &'static str) {
        self.goaway(code, why);
        self.drop_streams();
        self.gathering = None;
        self.close(true);
    }

    /// Every stream goes: those the application reads are cancelled.
    fn drop_streams(&mut self) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            if self.streams.get(&id).is_some_and(Stream::reading) {
                self.told.push_back(Event::Cancelled { stream: id });
            }
            self.forget(id, true);
        }
        self.ready.clear();
    }

    fn close(&mut self, linger: bool) {
        if matches!(self.phase, Phase::Preface | Phase::Open) {
            self.enter(Phase::Closing {
                linger: linger && !self.peer_closed,
            });
        }
        self.after_change();
    }

    fn enter(&mut self, phase: Phase) {
        if self.phase != phase {
            log::trace!("#{}: h2 {:?} -> {phase:?}", self.id, self.phase);
            self.phase = phase;
            self.since = self.clock;
        }
    }

    /// After anything that can end the connection's work: close once no
    /// stream is left after a GOAWAY either way, and once output is flushed.
    fn after_change(&mut self) {
        if self.phase == Phase::Open
            && (self.goaway_sent || self.peer_done)
            && self.streams.is_empty()
            && self.told.is_empty()
        {
            self.close(true);
        }
        if let Phase::Closing { linger } = self.phase
            && self.output.is_empty()
        {
            if linger {
                self.shutdown_requested = true;
                self.enter(Phase::Lingering);
            } else {
                self.enter(Phase::Closed);
            }
        }
    }

    // ----- output ------------------------------------------------------------

    pub(crate) fn output(&self) -> &WriteQueue {
        &self.output
    }

    pub(crate) fn has_output(&self) -> bool {
        self.phase != Phase::Closed && !self.output.is_empty()
    }

    pub(crate) fn written(&mut self, n: usize, at: Instant, delivered: &mut impl FnMut(Delivered)) {
        self.clock = at;
        if n > 0 {
            self.last_write = at;
            self.output.advance(n, delivered);
        }
        self.fill();
        self.after_change();
    }

    pub(crate) fn abandon_output(&mut self, delivered: &mut impl FnMut(Delivered)) {
        if self.phase == Phase::Closed {
            self.drop_streams();
            self.told.clear();
            self.take_cut_short(delivered);
            self.output.abandon(delivered);
        }
    }

    pub(crate) fn take_shutdown_request(&mut self) -> bool {
        std::mem::take(&mut self.shutdown_requested)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub(crate) fn served(&self) -> u64 {
        self.served
    }

    /// Streams open now, for the status page.
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Graceful shutdown: GOAWAY with the last stream begun; those finish,
    /// no other starts.
    pub(crate) fn drain(&mut self) {
        match self.phase {
            Phase::Preface => self.close(false),
            Phase::Open => {
                self.goaway(ErrorCode::NO_ERROR, "shutting down");
                // Their answers are queued; their bodies would only delay the stop.
                for id in self.streams_that(Stream::draining) {
                    self.stop_draining(id);
                }
                self.after_change();
            }
            _ => {}
        }
    }

    /// Closes at once, dropping whatever was queued.
    pub(crate) fn abort(&mut self) {
        self.input.clear();
        self.enter(Phase::Closed);
    }

    /// A panic interrupted the work on `stream` (if one was in hand): it
    /// gets `500` if it has no answer yet, and the connection ends with
    /// GOAWAY INTERNAL_ERROR after what is queued. Whether it was answered.
    pub(crate) fn recover_from_bug(&mut self, stream: Option<u32>, now: Now<'_>) -> bool {
        let unanswered = stream.and_then(|id| {
            let stream = self.streams.get(&id).filter(|s| !s.answered)?;
            Some((id, stream.exchange))
        });
        if let Some((id, exchange)) = unanswered {
            let answer = Response::error(StatusCode::INTERNAL_SERVER_ERROR);
            self.respond(id, exchange, answer, now);
        }
        let unanswered = unanswered.map(|(id, _)| id);
        self.goaway(ErrorCode::INTERNAL_ERROR, "a bug");
        // The answer just queued goes out; nothing else new does.
        self.ready.retain(|&id| Some(id) == unanswered);
        let others: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| Some(id) != unanswered)
            .collect();
        for id in others {
            self.forget(id, true);
        }
        self.fill();
        if self.streams.is_empty() {
            self.close(true);
        } else {
            self.peer_done = true;
        }
        unanswered.is_some()
    }

    // ----- time --------------------------------------------------------------

    pub(crate) fn deadline(&self) -> Option<Instant> {
        let t = &self.settings.timeouts;
        let blocked = self.streams.values().any(|s| s.answered && !s.local_ended);
        let sending = (self.has_output() || blocked).then(|| self.last_write + t.send);
        let reading = match self.phase {
            Phase::Preface => Some(self.accepted + t.header),
            Phase::Open if self.streams.values().any(Stream::awaits_input) => {
                Some(self.last_read + t.body)
            }
            Phase::Open if self.streams.is_empty() => Some(self.idle_since + t.keep_alive),
            Phase::Lingering => Some(self.since + t.linger),
            Phase::Open | Phase::Closing { .. } | Phase::Closed => None,
        };
        match (sending, reading) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn on_deadline(&mut self, now: Now<'_>) {
        self.clock = now.instant;
        let t = self.settings.timeouts;
        let blocked = self.streams.values().any(|s| s.answered && !s.local_ended);
        if (self.has_output() || blocked) && now.instant >= self.last_write + t.send {
            log::debug!("#{}: client stopped reading; closing", self.id);
            self.drop_streams();
            self.abort();
            return;
        }
        match self.phase {
            Phase::Preface if now.instant >= self.accepted + t.header => self.abort(),
            Phase::Open => {
                let waiting = self.streams.values().any(Stream::awaits_input);
                if waiting && now.instant >= self.last_read + t.body {
                    for id in self.streams_that(Stream::draining) {
                        self.stop_draining(id);
                    }
                    for id in self.streams_that(Stream::reading) {
                        if let Some(stream) = self.streams.get_mut(&id) {
                            // Its 408 resets it: the body drains no longer.
                            stream.wants_body = false;
                            stream.drain_left = 0;
                        }
                        self.told.push_back(Event::BodyFailed {
                            stream: id,
                            error: ProtocolError::TimedOut,
                        });
                    }
                    self.after_change();
                } else if self.streams.is_empty() && now.instant >= self.idle_since + t.keep_alive {
                    log::trace!("#{}: idle timeout", self.id);
                    self.goaway(ErrorCode::NO_ERROR, "idle");
                    self.after_change();
                }
            }
            Phase::Lingering if now.instant >= self.since + t.linger => self.abort(),
            _ => {}
        }
    }

    /// The nearest HTTP/1.1 state, for the status page and the harness.
    pub(crate) fn state(&self) -> State {
        match self.phase {
            Phase::Preface => State::ReadingHead,
            Phase::Open if self.streams.values().any(Stream::awaits_input) => State::ReadingBody,
            Phase::Open if self.gathering.is_some() => State::ReadingHead,
            Phase::Open if self.streams.is_empty() => State::Idle,
            Phase::Open => State::AwaitingAnswer,
            Phase::Closing { .. } => State::Closing,
            Phase::Lingering => State::Lingering,
            Phase::Closed => State::Closed,
        }
    }
}

#[cfg(test)]
mod tests;
