//! The HTTP/2 core driven by hand: frames in, events and frames out, no
//! socket and no clock.

use std::io::IoSlice;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::h2::hpack::tests::{decode_all, request_block};
use crate::http::{Body, Front};

const DATE: &str = "Thu, 03 Dec 2026 17:00:00 GMT";

fn now_at(instant: Instant) -> Now<'static> {
    Now {
        instant,
        wall: SystemTime::UNIX_EPOCH,
        date: DATE,
    }
}

/// A frame the test reads back from the connection's output.
#[derive(Debug)]
struct Sent {
    kind: Kind,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Sent {
    fn code(&self) -> u32 {
        let at = if self.kind == Kind::GoAway { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("4 bytes"))
    }
}

struct Peer {
    conn: Connection,
    clock: Instant,
    /// Bytes written out of the connection and not yet parsed into frames.
    unparsed: Vec<u8>,
    decoder: Decoder,
}

impl Peer {
    fn new() -> Peer {
        Peer::with(Settings::default())
    }

    fn with(settings: Settings) -> Peer {
        let clock = Instant::now();
        let mut input = InputBuffer::default();
        input.attach(vec![0; READ_SIZE]);
        let conn = Connection::new(7, Arc::new(settings), input, clock);
        let mut peer = Peer {
            conn,
            clock,
            unparsed: Vec::new(),
            decoder: Decoder::new(),
        };
        peer.send(PREFACE);
        peer
    }

    /// A peer past the preface and its SETTINGS, the server's greeting read.
    fn open() -> Peer {
        let mut peer = Peer::new();
        peer.frame(Kind::Settings, 0, 0, &[]);
        assert!(peer.events().is_empty());
        let greeting = peer.frames();
        assert_eq!(greeting[0].kind, Kind::Settings);
        assert_eq!(
            greeting.last().map(|f| (f.kind, f.flags)),
            Some((Kind::Settings, frame::ACK))
        );
        peer
    }

    fn send(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if !self.conn.has_buffer() {
                self.conn.attach_buffer(vec![0; READ_SIZE]);
            }
            let room = self.conn.read_buffer();
            let n = room.len().min(bytes.len());
            assert!(n > 0, "the connection stopped reading");
            room[..n].copy_from_slice(&bytes[..n]);
            self.conn.received(n, self.clock);
            bytes = &bytes[n..];
        }
    }

    fn frame(&mut self, kind: Kind, flags: u8, stream: u32, payload: &[u8]) {
        let mut bytes = Vec::new();
        frame::push(&mut bytes, kind, flags, stream, payload);
        self.send(&bytes);
    }

    fn request(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = request_block(fields);
        let flags = frame::END_HEADERS | if end_stream { frame::END_STREAM } else { 0 };
        self.frame(Kind::Headers, flags, stream, &block);
    }

    fn get(&mut self, stream: u32, path: &str) {
        self.request(
            stream,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "a"),
                (":path", path),
            ],
            true,
        );
    }

    /// Every event until the connection waits, the owned parts kept.
    fn events(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let now = now_at(self.clock);
            match self.conn.next_event(now) {
                Event::Pending => return seen,
                Event::Request { stream, head, .. } => {
                    seen.push(format!("request s{stream} {}", head.request_line()));
                }
                Event::Body { stream, data } => {
                    seen.push(format!("body s{stream} {}", String::from_utf8_lossy(data)));
                }
                Event::BodyEnd { stream } => seen.push(format!("end s{stream}")),
                Event::BodyFailed { stream, error } => {
                    seen.push(format!("failed s{stream} {error}"));
                }
                Event::Cancelled { stream } => seen.push(format!("cancelled s{stream}")),
                Event::Refused { status, .. } => seen.push(format!("refused {}", status.as_u16())),
            }
        }
    }

    fn respond(&mut self, stream: u32, exchange: u64, response: Response) {
        let now = now_at(self.clock);
        self.conn.respond(stream, exchange, response, now);
    }

    /// Everything the connection has to send, written and parsed.
    fn frames(&mut self) -> Vec<Sent> {
        loop {
            let mut slices = [IoSlice::new(&[]); 8];
            let n = match self.conn.output().front(&mut slices) {
                Front::Empty => break,
                Front::Memory { count, .. } => {
                    let mut n = 0;
                    for slice in &slices[..count] {
                        self.unparsed.extend_from_slice(slice);
                        n += slice.len();
                    }
                    n
                }
                Front::File { .. } => panic!("no files in these tests"),
            };
            self.conn.written(n, self.clock, &mut |_| {});
        }
        let mut frames = Vec::new();
        while let Some(head) = Head::read(&self.unparsed) {
            let end = frame::HEAD_LEN + head.len as usize;
            if self.unparsed.len() < end {
                break;
            }
            frames.push(Sent {
                kind: head.kind,
                flags: head.flags,
                stream: head.stream,
                payload: self.unparsed[frame::HEAD_LEN..end].to_vec(),
            });
            self.unparsed.drain(..end);
        }
        frames
    }

    fn fields(&mut self, headers: &Sent) -> Vec<(String, String)> {
        decode_all(&mut self.decoder, &headers.payload).expect("our own block decodes")
    }

    fn goaway(&mut self) -> Option<u32> {
        self.frames()
            .iter()
            .find(|f| f.kind == Kind::GoAway)
            .map(Sent::code)
    }
}

#[test]
fn a_request_is_answered_with_headers_and_data() {
    let mut peer = Peer::open();
    peer.get(1, "/hello?x=1");
    assert_eq!(peer.events(), ["request s1 GET /hello?x=1 HTTP/2.0"]);
    peer.respond(1, 1, Response::plain_text(StatusCode::OK, "hello"));
    let frames = peer.frames();
    assert_eq!(frames[0].kind, Kind::Headers);
    assert_eq!(frames[0].flags, frame::END_HEADERS);
    let fields = peer.fields(&frames[0]);
    assert_eq!(fields[0], (":status".into(), "200".into()));
    assert!(fields.contains(&("content-length".into(), "5".into())));
    assert_eq!(frames[1].kind, Kind::Data);
    assert_eq!(frames[1].flags, frame::END_STREAM);
    assert_eq!(frames[1].payload, b"hello");
    assert_eq!(peer.conn.open_streams(), 0);
    assert_eq!(peer.conn.served(), 1);
}

#[test]
fn data_waits_for_the_windows_and_costs_no_copy_while_it_waits() {
    let mut peer = Peer::new();
    // The peer allows 10 bytes per stream.
    peer.frame(Kind::Settings, 0, 0, &[0, 4, 0, 0, 0, 10]);
    peer.events();
    peer.frames();
    peer.get(1, "/big");
    peer.events();
    let body = vec![b'x'; 100_000];
    peer.respond(1, 1, Response::new(StatusCode::OK).with_body(body));
    let frames = peer.frames();
    let data: Vec<&Sent> = frames.iter().filter(|f| f.kind == Kind::Data).collect();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].payload.len(), 10);
    // Nothing more is framed while the window is shut.
    assert_eq!(peer.conn.output().unsent(), 0);
    peer.frame(Kind::WindowUpdate, 0, 1, &200_000u32.to_be_bytes());
    peer.events();
    let frames = peer.frames();
    let sizes: Vec<usize> = frames
        .iter()
        .filter(|f| f.kind == Kind::Data)
        .map(|f| f.payload.len())
        .collect();
    // The connection's window (65,535 bytes) is the bound now, in frames
    // no larger than 16 KiB.
    assert_eq!(sizes.iter().sum::<usize>(), 65_535 - 10);
    assert!(sizes.iter().all(|&n| n <= 16_384));
    peer.frame(Kind::WindowUpdate, 0, 0, &100_000u32.to_be_bytes());
    peer.events();
    let frames = peer.frames();
    let last = frames.iter().rfind(|f| f.kind == Kind::Data).expect("data");
    assert_eq!(last.flags, frame::END_STREAM);
    assert_eq!(peer.conn.served(), 1);
}

#[test]
fn a_change_of_initial_window_moves_every_open_streams_window() {
    let mut peer = Peer::new();
    peer.frame(Kind::Settings, 0, 0, &[0, 4, 0, 0, 0, 0]);
    peer.events();
    peer.frames();
    peer.get(1, "/a");
    peer.events();
    peer.respond(1, 1, Response::plain_text(StatusCode::OK, "0123456789"));
    assert!(peer.frames().iter().all(|f| f.kind != Kind::Data));
    peer.frame(Kind::Settings, 0, 0, &[0, 4, 0, 0, 0, 4]);
    peer.events();
    let data: Vec<Vec<u8>> = peer
        .frames()
        .into_iter()
        .filter(|f| f.kind == Kind::Data)
        .map(|f| f.payload)
        .collect();
    assert_eq!(data, [b"0123".to_vec()]);
    // Stream 3's window, grown before its answer, overflows when the
    // initial window does.
    peer.get(3, "/b");
    peer.events();
    peer.frame(Kind::WindowUpdate, 0, 3, &100u32.to_be_bytes());
    peer.frame(Kind::Settings, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]);
    peer.events();
    assert_eq!(peer.goaway(), Some(ErrorCode::FLOW_CONTROL_ERROR.0));
}

#[test]
fn a_request_body_comes_in_pieces_and_gives_the_window_back() {
    let mut peer = Peer::open();
    let post = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/files/x"),
        ("content-length", "6"),
    ];
    peer.request(1, &post, false);
    assert_eq!(peer.events(), ["request s1 POST /files/x HTTP/2.0"]);
    peer.conn.read_body(1);
    peer.frame(Kind::Data, 0, 1, b"abc");
    peer.frame(Kind::Data, frame::END_STREAM, 1, b"def");
    assert_eq!(peer.events(), ["body s1 abc", "body s1 def", "end s1"]);
    peer.respond(1, 1, Response::new(StatusCode::CREATED));
    let frames = peer.frames();
    assert_eq!(
        frames.last().map(|f| f.flags & frame::END_STREAM),
        Some(frame::END_STREAM)
    );

    // A body longer than its content-length is malformed: the stream is
    // reset, and the application drops what it held.
    peer.request(3, &post, false);
    peer.events();
    peer.conn.read_body(3);
    peer.frame(Kind::Data, 0, 3, b"1234567");
    assert_eq!(peer.events(), ["cancelled s3"]);
    let reset = peer
        .frames()
        .into_iter()
        .find(|f| f.kind == Kind::RstStream);
    assert_eq!(
        reset.map(|f| (f.stream, f.code())),
        Some((3, ErrorCode::PROTOCOL_ERROR.0))
    );
}

#[test]
fn a_body_over_the_limit_is_refused_at_its_head_or_as_it_crosses() {
    let mut settings = Settings::default();
    settings.limits.max_body_bytes = 4;
    let mut peer = Peer::with(settings);
    peer.frame(Kind::Settings, 0, 0, &[]);
    peer.events();
    peer.frames();
    let post = |length: &'static str| {
        vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/up"),
            ("content-length", length),
        ]
    };
    peer.request(1, &post("5"), false);
    assert_eq!(peer.events(), ["refused 413"]);
    let frames = peer.frames();
    assert_eq!(peer.fields(&frames[0])[0].1, "413");
    // No content-length: refused as the body crosses the limit.
    peer.request(3, &post("0")[..4], false);
    peer.events();
    peer.conn.read_body(3);
    peer.frame(Kind::Data, 0, 3, b"12345");
    assert_eq!(peer.events(), ["failed s3 request body too large"]);
}

#[test]
fn connection_errors_end_with_goaway_and_its_code() {
    type Case = (&'static str, Box<dyn Fn(&mut Peer)>, ErrorCode);
    let cases: [Case; 7] = [
        (
            "an even stream",
            Box::new(|p| p.get(2, "/")),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "DATA on an idle stream",
            Box::new(|p| p.frame(Kind::Data, 0, 5, b"x")),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "a frame over 16 KiB",
            Box::new(|p| p.frame(Kind::Ping, 0, 0, &[0; 16_385])),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
        (
            "a broken HPACK block",
            Box::new(|p| p.frame(Kind::Headers, frame::END_HEADERS, 1, &[0x80])),
            ErrorCode::COMPRESSION_ERROR,
        ),
        (
            "a stream id going back",
            Box::new(|p| {
                p.get(5, "/");
                p.events();
                p.get(3, "/");
            }),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "a frame inside a header block",
            Box::new(|p| {
                p.frame(Kind::Headers, 0, 1, &request_block(&[(":method", "GET")]));
                p.frame(Kind::Ping, 0, 0, &[0; 8]);
            }),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "the connection's window past 2^31-1",
            Box::new(|p| p.frame(Kind::WindowUpdate, 0, 0, &0x7fff_ffffu32.to_be_bytes())),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
    ];
    for (name, send, code) in cases {
        let mut peer = Peer::open();
        send(&mut peer);
        peer.events();
        assert_eq!(peer.goaway(), Some(code.0), "{name}");
        // Sent, our side shut, the peer's last bytes read and dropped.
        assert_eq!(peer.conn.state(), State::Lingering, "{name}");
    }
}

#[test]
fn the_first_frame_must_be_settings() {
    let mut peer = Peer::new();
    peer.frame(Kind::Ping, 0, 0, &[0; 8]);
    peer.events();
    assert_eq!(peer.goaway(), Some(ErrorCode::PROTOCOL_ERROR.0));
}

#[test]
fn streams_past_the_limit_are_refused() {
    let mut peer = Peer::open();
    for n in 0..MAX_STREAMS as u32 + 1 {
        peer.request(
            1 + 2 * n,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "a"),
                (":path", "/"),
            ],
            false,
        );
    }
    assert_eq!(peer.events().len(), MAX_STREAMS);
    let refused: Vec<(u32, u32)> = peer
        .frames()
        .iter()
        .filter(|f| f.kind == Kind::RstStream)
        .map(|f| (f.stream, f.code()))
        .collect();
    assert_eq!(refused, [(201, ErrorCode::REFUSED_STREAM.0)]);
}

#[test]
fn a_continuation_flood_is_cut() {
    let mut peer = Peer::open();
    peer.frame(Kind::Headers, 0, 1, &request_block(&[(":method", "GET")]));
    for _ in 0..MAX_CONTINUATIONS {
        peer.frame(Kind::Continuation, 0, 1, &[]);
        peer.events();
    }
    assert_eq!(peer.goaway(), Some(ErrorCode::ENHANCE_YOUR_CALM.0));
}

#[test]
fn rapid_resets_and_pings_floods_are_cut() {
    let mut peer = Peer::open();
    let mut stream = 1;
    let mut goaway = None;
    while goaway.is_none() && stream < 1000 {
        peer.request(
            stream,
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "a"),
                (":path", "/"),
            ],
            true,
        );
        peer.events();
        peer.frame(Kind::RstStream, 0, stream, &8u32.to_be_bytes());
        peer.events();
        goaway = peer.goaway();
        stream += 2;
    }
    assert_eq!(goaway, Some(ErrorCode::ENHANCE_YOUR_CALM.0));
    assert!(stream < 300, "cut after {} streams", stream / 2);

    let mut peer = Peer::open();
    let mut pings = 0;
    let mut goaway = None;
    while goaway.is_none() && pings < 5000 {
        peer.frame(Kind::Ping, 0, 0, &[1; 8]);
        peer.events();
        goaway = peer.goaway();
        pings += 1;
    }
    assert_eq!(goaway, Some(ErrorCode::ENHANCE_YOUR_CALM.0));
    assert!(pings < 2000, "{pings} pings");
}

#[test]
fn an_hpack_bomb_is_answered_431_and_keeps_nothing() {
    let mut peer = Peer::open();
    // One 4,000-byte field in the table, then a block naming it 1,000
    // times: 4 MB decoded from 1 KB.
    let mut block = request_block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/"),
        ("x-bomb", &"b".repeat(4000)),
    ]);
    block.extend(std::iter::repeat_n(0xbe, 1000)); // index 62: the newest entry
    peer.frame(
        Kind::Headers,
        frame::END_HEADERS | frame::END_STREAM,
        1,
        &block,
    );
    assert_eq!(peer.events(), ["refused 431"]);
    let frames = peer.frames();
    assert_eq!(peer.fields(&frames[0])[0].1, "431");
    // And the connection goes on.
    peer.get(3, "/next");
    assert_eq!(peer.events(), ["request s3 GET /next HTTP/2.0"]);
}

#[test]
fn malformed_requests_reset_their_stream_only() {
    let mut peer = Peer::open();
    peer.request(
        1,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("Upper", "x"),
        ],
        true,
    );
    peer.request(
        3,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/ok"),
        ],
        true,
    );
    assert_eq!(peer.events(), ["request s3 GET /ok HTTP/2.0"]);
    let reset = peer
        .frames()
        .into_iter()
        .find(|f| f.kind == Kind::RstStream);
    assert_eq!(
        reset.map(|f| (f.stream, f.code())),
        Some((1, ErrorCode::PROTOCOL_ERROR.0))
    );
}

/// The RST_STREAM frames sent since the last look: (stream, code).
fn resets(frames: &[Sent]) -> Vec<(u32, u32)> {
    frames
        .iter()
        .filter(|f| f.kind == Kind::RstStream)
        .map(|f| (f.stream, f.code()))
        .collect()
}

#[test]
fn a_body_answered_before_it_ends_is_still_checked_then_dropped() {
    let mut peer = Peer::open();
    let post = |length: Option<&'static str>| {
        let mut fields = vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/"),
        ];
        fields.extend(length.map(|l| ("content-length", l)));
        fields
    };
    // Answered at its head (a 405, say): the stream stays half-closed
    // (local) while the body ends as the client meant it to, no reset.
    let answer_early = |peer: &mut Peer, stream: u32, length| {
        peer.request(stream, &post(length), false);
        peer.events();
        let exchange = u64::from(stream / 2 + 1);
        peer.respond(
            stream,
            exchange,
            Response::new(StatusCode::METHOD_NOT_ALLOWED),
        );
        let frames = peer.frames();
        assert_eq!(
            frames.last().map(|f| f.flags & frame::END_STREAM),
            Some(frame::END_STREAM)
        );
        assert_eq!(resets(&frames), []);
    };
    answer_early(&mut peer, 1, Some("6"));
    assert_eq!(peer.conn.open_streams(), 1);
    peer.frame(Kind::Data, 0, 1, b"abc");
    peer.frame(Kind::Data, frame::END_STREAM, 1, b"def");
    assert!(peer.events().is_empty(), "nobody hears of a dropped body");
    assert_eq!(resets(&peer.frames()), []);
    assert_eq!(peer.conn.open_streams(), 0);
    // Closed by both sides now: a late DATA is STREAM_CLOSED.
    peer.frame(Kind::Data, 0, 1, b"x");
    peer.events();
    assert_eq!(resets(&peer.frames()), [(1, ErrorCode::STREAM_CLOSED.0)]);

    // Still malformed when nobody reads it: more than content-length...
    answer_early(&mut peer, 3, Some("6"));
    peer.frame(Kind::Data, 0, 3, b"1234567");
    peer.events();
    assert_eq!(resets(&peer.frames()), [(3, ErrorCode::PROTOCOL_ERROR.0)]);
    // ...trailers with a pseudo-field, or trailers that do not end it.
    answer_early(&mut peer, 5, None);
    let trailers = request_block(&[(":path", "/")]);
    peer.frame(
        Kind::Headers,
        frame::END_HEADERS | frame::END_STREAM,
        5,
        &trailers,
    );
    peer.events();
    assert_eq!(resets(&peer.frames()), [(5, ErrorCode::PROTOCOL_ERROR.0)]);
    answer_early(&mut peer, 7, None);
    let trailers = request_block(&[("x-test", "ok")]);
    peer.frame(Kind::Headers, frame::END_HEADERS, 7, &trailers);
    peer.events();
    assert_eq!(resets(&peer.frames()), [(7, ErrorCode::PROTOCOL_ERROR.0)]);

    // Reset by the client, then sent DATA: STREAM_CLOSED (section 5.1).
    answer_early(&mut peer, 9, None);
    peer.frame(Kind::RstStream, 0, 9, &8u32.to_be_bytes() /* CANCEL */);
    peer.frame(Kind::Data, frame::END_STREAM, 9, b"test");
    peer.events();
    assert_eq!(resets(&peer.frames()), [(9, ErrorCode::STREAM_CLOSED.0)]);

    // A body past the allowance is stopped with NO_ERROR (section 8.1)...
    answer_early(&mut peer, 11, None);
    let piece = vec![b'x'; 16_384];
    let mut sent = 0;
    while sent < DRAIN_ALLOWANCE {
        assert_eq!(resets(&peer.frames()), [], "stopped at {sent} bytes");
        peer.frame(Kind::Data, 0, 11, &piece);
        peer.events();
        sent += piece.len() as u64;
    }
    assert_eq!(resets(&peer.frames()), [(11, ErrorCode::NO_ERROR.0)]);
    // ...and so is one that stalls past the body timeout.
    answer_early(&mut peer, 13, None);
    peer.clock += peer.conn.settings.timeouts.body + Duration::from_secs(1);
    let now = now_at(peer.clock);
    peer.conn.on_deadline(now);
    assert_eq!(resets(&peer.frames()), [(13, ErrorCode::NO_ERROR.0)]);
    assert_eq!(peer.conn.open_streams(), 0);
    assert_eq!(peer.conn.served(), 7);
}

#[test]
fn a_graceful_stop_finishes_the_streams_begun() {
    let mut peer = Peer::open();
    peer.get(1, "/a");
    peer.events();
    peer.conn.drain();
    let frames = peer.frames();
    let goaway = frames
        .iter()
        .find(|f| f.kind == Kind::GoAway)
        .expect("GOAWAY");
    assert_eq!(goaway.payload[..8], [0, 0, 0, 1, 0, 0, 0, 0]);
    // A stream begun after the GOAWAY is ignored; the one before is answered.
    peer.get(3, "/b");
    assert!(peer.events().is_empty());
    assert!(!peer.conn.is_closed());
    peer.respond(1, 1, Response::plain_text(StatusCode::OK, "a"));
    peer.frames();
    assert!(peer.conn.take_shutdown_request());
    peer.conn.received_eof(peer.clock);
    assert!(peer.conn.is_closed());
}

#[test]
fn an_idle_connection_times_out_with_goaway() {
    let mut peer = Peer::open();
    let deadline = peer.conn.deadline().expect("a keep-alive deadline");
    assert_eq!(
        deadline,
        peer.clock + Settings::default().timeouts.keep_alive
    );
    peer.clock += Duration::from_secs(16);
    peer.conn.on_deadline(now_at(peer.clock));
    assert_eq!(peer.goaway(), Some(ErrorCode::NO_ERROR.0));
}

/// A HEAD request refused before the application sees it (a 400 from the
/// parser) gets no DATA either.
#[test]
fn a_refused_head_request_gets_no_data() {
    let mut peer = Peer::open();
    let head = [
        (":method", "HEAD"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/"),
        ("range", "bytes=0-0\u{1}"),
    ];
    peer.request(1, &head, true);
    assert_eq!(peer.events(), ["refused 400"]);
    let frames = peer.frames();
    let kinds: Vec<(Kind, u8)> = frames.iter().map(|f| (f.kind, f.flags)).collect();
    assert_eq!(
        kinds,
        [(Kind::Headers, frame::END_HEADERS | frame::END_STREAM)]
    );
}

#[test]
fn a_head_request_gets_the_length_and_no_data() {
    let mut peer = Peer::open();
    peer.request(
        1,
        &[
            (":method", "HEAD"),
            (":scheme", "http"),
            (":authority", "a"),
            (":path", "/"),
        ],
        true,
    );
    peer.events();
    peer.respond(
        1,
        1,
        Response::new(StatusCode::OK).with_body(Body::from(vec![1; 9])),
    );
    let frames = peer.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].flags, frame::END_HEADERS | frame::END_STREAM);
    assert!(
        peer.fields(&frames[0])
            .contains(&("content-length".into(), "9".into()))
    );
}
