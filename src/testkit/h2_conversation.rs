//! HTTP/2 conversations with a structure, built from arbitrary bytes: the
//! generator behind the `session_h2` fuzz target and its property test.
//!
//! Raw bytes rarely make a valid frame, let alone a header block HPACK
//! decodes, so most of the HTTP/2 core would go unexercised. An
//! [`H2Conversation`] is the requests of [`conversation`](super::conversation)
//! (the same methods, targets, fields and bodies) said in HTTP/2 and framed
//! the ways a client may frame them: each field in one of HPACK's
//! representations, Huffman-coded or not, a table size update, references
//! to fields indexed before; a block cut into CONTINUATION frames; padding;
//! priority; a body in several DATA frames, ended by one of them, by
//! trailers, or never. Some requests are spoiled as section 8 forbids
//! (upper case, pseudo-fields missing, doubled, late or unknown,
//! connection-specific fields, an empty `:path`). Between them come the
//! connection's other frames (SETTINGS, PING, WINDOW_UPDATE, RST_STREAM,
//! PRIORITY, GOAWAY, stray DATA, unknown types, anything) on streams new,
//! used, even, zero or far.
//!
//! Everything here is written by hand from RFC 9113 and RFC 7541, apart
//! from the Huffman code table, so the generator does not share the
//! server's mistakes.

use std::collections::VecDeque;

use arbitrary::{Arbitrary, Unstructured};

use super::conversation::{H2Message, Request, pick};

/// HTTP/2 by prior knowledge: the preface, a SETTINGS frame, then frames.
#[derive(Clone, Debug)]
pub struct H2Conversation {
    settings: Vec<SettingChoice>,
    steps: Vec<Step>,
    pub cuts: Vec<u16>,
}

impl<'a> Arbitrary<'a> for H2Conversation {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let settings = match pick(u, &[4, 1])? {
            0 => Vec::new(),
            _ => u.arbitrary()?,
        };
        let count = u.int_in_range(1..=10)?;
        // Mostly a request first: a frame on a stream before any is open is
        // a connection error, which would end most conversations at once.
        let first = match pick(u, &[6, 1])? {
            0 => Step::Request(Box::new(RequestStep::arbitrary(u)?)),
            _ => Step::Control(Control::arbitrary(u)?),
        };
        let mut steps = vec![first];
        for _ in 1..count {
            steps.push(Step::arbitrary(u)?);
        }
        Ok(H2Conversation {
            settings,
            steps,
            cuts: u.arbitrary()?,
        })
    }
}

impl H2Conversation {
    /// `request` alone on stream 1, framed as an ordinary client frames it:
    /// one HEADERS frame, every field indexed, the body in one DATA frame.
    pub fn plain(request: Request) -> H2Conversation {
        let step = RequestStep {
            request,
            stream: StreamChoice::Next,
            spoil: Spoil::None,
            encodings: Vec::new(),
            huffman: Vec::new(),
            size_update: None,
            cuts: Vec::new(),
            pad: None,
            priority: None,
            pieces: 1,
            pad_data: None,
            ending: Ending::Normal,
        };
        H2Conversation {
            settings: Vec::new(),
            steps: vec![Step::Request(Box::new(step))],
            cuts: Vec::new(),
        }
    }

    /// The bytes a client would send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::default();
        writer
            .out
            .extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let mut payload = Vec::new();
        for setting in &self.settings {
            setting.write(&mut payload);
        }
        writer.frame(SETTINGS, 0, 0, &payload);
        for step in &self.steps {
            match step {
                Step::Request(request) => request.write(&mut writer),
                Step::Control(control) => control.write(&mut writer),
            }
        }
        writer.out
    }

    pub fn cuts(&self) -> Vec<usize> {
        self.cuts.iter().map(|&c| usize::from(c)).collect()
    }
}

// Frame types and flags (RFC 9113 section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// The bytes so far, and what a client keeps track of to write the next.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
    /// Stream ids opened, in order.
    opened: Vec<u32>,
    table: Table,
}

/// The client's model of the server's HPACK table: the sizes of the fields
/// it indexed, newest first, so that its references name real entries.
struct Table {
    sizes: VecDeque<usize>,
    capacity: usize,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            sizes: VecDeque::new(),
            capacity: TABLE_SIZE,
        }
    }
}

/// SETTINGS_HEADER_TABLE_SIZE's default, which the server keeps.
const TABLE_SIZE: usize = 4096;

impl Table {
    /// Section 4.4: an entry costs its name, its value and 32 bytes.
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        self.sizes.push_front(name.len() + value.len() + 32);
        self.evict();
    }

    fn resize(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict();
    }

    fn evict(&mut self) {
        while self.sizes.iter().sum::<usize>() > self.capacity {
            self.sizes.pop_back();
        }
    }
}

impl Writer {
    fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = payload.len().min(0xff_ffff) as u32;
        self.out.extend_from_slice(&len.to_be_bytes()[1..]);
        self.out.push(kind);
        self.out.push(flags);
        self.out
            .extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        self.out
            .extend_from_slice(payload.get(..len as usize).unwrap_or(payload));
    }

    fn stream(&mut self, choice: StreamChoice) -> u32 {
        match choice {
            StreamChoice::Next => {
                let id = self.opened.last().map_or(1, |last| last + 2);
                self.opened.push(id);
                id
            }
            StreamChoice::Used(k) if !self.opened.is_empty() => {
                self.opened[usize::from(k) % self.opened.len()]
            }
            StreamChoice::Used(_) => 1,
            StreamChoice::Zero => 0,
            StreamChoice::Even => 2,
            StreamChoice::Far => 0x7fff_ffff,
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Request(Box<RequestStep>),
    Control(Control),
}

impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[3, 2])? {
            0 => Step::Request(Box::new(RequestStep::arbitrary(u)?)),
            _ => Step::Control(Control::arbitrary(u)?),
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum StreamChoice {
    /// The next odd id: a new stream, as a client opens one.
    Next,
    /// One this client opened before (the k-th, modulo how many).
    Used(u8),
    Zero,
    /// A server's id.
    Even,
    /// The last id there is.
    Far,
}

impl<'a> Arbitrary<'a> for StreamChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[1, 8, 1, 1, 1])? {
            0 => StreamChoice::Next,
            1 => StreamChoice::Used(u.arbitrary()?),
            2 => StreamChoice::Zero,
            3 => StreamChoice::Even,
            _ => StreamChoice::Far,
        })
    }
}

/// One request on its own stream, and how it is framed.
#[derive(Clone, Debug)]
struct RequestStep {
    request: Request,
    /// Mostly a new stream; sometimes one in use (trailers, or an error).
    stream: StreamChoice,
    spoil: Spoil,
    /// Each field's representation, in turn (the list repeats).
    encodings: Vec<Encoding>,
    huffman: Vec<bool>,
    size_update: Option<SizeUpdate>,
    /// Where the block is cut into CONTINUATION frames, as piece lengths.
    cuts: Vec<u8>,
    pad: Option<u8>,
    priority: Option<Priority>,
    /// How many DATA frames the body is cut into.
    pieces: u8,
    pad_data: Option<u8>,
    ending: Ending,
}

impl<'a> Arbitrary<'a> for RequestStep {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(RequestStep {
            request: Request::arbitrary(u)?,
            stream: match pick(u, &[12, 1])? {
                0 => StreamChoice::Next,
                _ => StreamChoice::arbitrary(u)?,
            },
            spoil: Spoil::arbitrary(u)?,
            encodings: u.arbitrary()?,
            huffman: u.arbitrary()?,
            size_update: match pick(u, &[8, 1])? {
                0 => None,
                _ => Some(u.arbitrary()?),
            },
            cuts: match pick(u, &[6, 1])? {
                0 => Vec::new(),
                _ => u.arbitrary()?,
            },
            pad: match pick(u, &[6, 1])? {
                0 => None,
                _ => Some(u.arbitrary()?),
            },
            priority: match pick(u, &[6, 1])? {
                0 => None,
                _ => Some(u.arbitrary()?),
            },
            pieces: u.int_in_range(1..=4)?,
            pad_data: match pick(u, &[6, 1])? {
                0 => None,
                _ => Some(u.arbitrary()?),
            },
            ending: Ending::arbitrary(u)?,
        })
    }
}

/// What makes a request malformed (RFC 9113 section 8.2 and 8.3), or, for
/// the crumbled cookie, what section 8.2.3 allows.
#[derive(Clone, Copy, Debug)]
enum Spoil {
    None,
    /// A field name in upper case.
    Uppercase,
    /// The k-th pseudo-field left out.
    Drop(u8),
    /// The k-th pseudo-field sent twice.
    Twice(u8),
    /// A pseudo-field after a regular one.
    Late,
    /// `:protocol`, which we do not take, or `:status`, a response's.
    Unknown,
    Status,
    /// `connection: keep-alive`, or `te` with something but `trailers`.
    Connection,
    TeGzip,
    /// `te: trailers`, which is allowed.
    TeTrailers,
    EmptyPath,
    /// The cookie split into crumbs, each its own field.
    Crumbs,
}

impl<'a> Arbitrary<'a> for Spoil {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        use Spoil::*;
        Ok(match pick(u, &[30, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2])? {
            0 => None,
            1 => Uppercase,
            2 => Drop(u.arbitrary()?),
            3 => Twice(u.arbitrary()?),
            4 => Late,
            5 => Unknown,
            6 => Status,
            7 => Connection,
            8 => TeGzip,
            9 => TeTrailers,
            10 => EmptyPath,
            _ => Crumbs,
        })
    }
}

/// HPACK's representations of a field (RFC 7541 section 6).
#[derive(Clone, Copy, Debug)]
enum Encoding {
    /// Literal with incremental indexing, the name a literal too.
    Indexing,
    /// Literal without indexing.
    Plain,
    /// Literal never indexed.
    Never,
    /// Literal without indexing, the name by its static index if it has one.
    NamedByIndex,
    /// In place of the field, a reference to one this client indexed (the
    /// field itself, indexed, while the table is empty).
    Reference(u8),
    /// A reference past the table: a connection error.
    BadReference,
}

impl<'a> Arbitrary<'a> for Encoding {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[8, 4, 2, 4, 4, 1])? {
            0 => Encoding::Indexing,
            1 => Encoding::Plain,
            2 => Encoding::Never,
            3 => Encoding::NamedByIndex,
            4 => Encoding::Reference(u.arbitrary()?),
            _ => Encoding::BadReference,
        })
    }
}

/// A dynamic table size update at a block's start (section 6.3).
#[derive(Clone, Copy, Debug)]
enum SizeUpdate {
    /// Within SETTINGS_HEADER_TABLE_SIZE: the table shrinks (or grows back).
    Within(u16),
    /// Past it: a connection error.
    Beyond,
}

impl<'a> Arbitrary<'a> for SizeUpdate {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[6, 1])? {
            0 => SizeUpdate::Within(u.arbitrary()?),
            _ => SizeUpdate::Beyond,
        })
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct Priority {
    on: StreamChoice,
    exclusive: bool,
    weight: u8,
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    /// END_STREAM on the last DATA frame (or on HEADERS, with no body).
    Normal,
    /// The body, then trailers with END_STREAM.
    Trailers,
    /// The body, then an empty DATA frame with END_STREAM.
    EmptyData,
    /// Never ended: the stream stays open.
    Never,
}

impl<'a> Arbitrary<'a> for Ending {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[12, 2, 1, 1])? {
            0 => Ending::Normal,
            1 => Ending::Trailers,
            2 => Ending::EmptyData,
            _ => Ending::Never,
        })
    }
}

impl RequestStep {
    fn write(&self, writer: &mut Writer) {
        let mut message = self.request.h2_message();
        spoil(&mut message.fields, self.spoil);
        let stream = writer.stream(self.stream);
        let block = self.block(&message.fields, writer, true);
        // A request with trailers of its own (a chunked one's) sends them.
        let ending = match self.ending {
            Ending::Normal if !message.trailers.is_empty() => Ending::Trailers,
            ending => ending,
        };
        let trailers = match ending {
            Ending::Trailers if message.trailers.is_empty() => {
                vec![(b"x-trailer".to_vec(), b"1".to_vec())]
            }
            Ending::Trailers => message.trailers.clone(),
            _ => Vec::new(),
        };
        let bodiless = message.body.is_empty() && trailers.is_empty();
        let ends_at_headers = bodiless && matches!(ending, Ending::Normal);
        self.headers(writer, stream, &block, ends_at_headers);
        if !ends_at_headers {
            self.body(writer, stream, &message, ending, &trailers);
        }
    }

    fn body(
        &self,
        writer: &mut Writer,
        stream: u32,
        message: &H2Message,
        ending: Ending,
        trailers: &[Field],
    ) {
        let body = &message.body;
        let pieces = usize::from(self.pieces.max(1));
        let size = body.len().div_ceil(pieces).max(1);
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        let data_ends = matches!(ending, Ending::Normal);
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let flags = if last && data_ends { END_STREAM } else { 0 };
            self.data(writer, stream, flags, chunk);
        }
        match ending {
            Ending::Normal if chunks.is_empty() => self.data(writer, stream, END_STREAM, &[]),
            Ending::Normal | Ending::Never => {}
            Ending::EmptyData => self.data(writer, stream, END_STREAM, &[]),
            Ending::Trailers => {
                let block = self.block(trailers, writer, false);
                self.headers(writer, stream, &block, true);
            }
        }
    }

    fn data(&self, writer: &mut Writer, stream: u32, flags: u8, bytes: &[u8]) {
        let mut payload = Vec::with_capacity(bytes.len() + 1);
        let mut flags = flags;
        if let Some(pad) = self.pad_data {
            flags |= PADDED;
            payload.push(pad);
            payload.extend_from_slice(bytes);
            payload.resize(payload.len() + usize::from(pad), 0);
        } else {
            payload.extend_from_slice(bytes);
        }
        writer.frame(DATA, flags, stream, &payload);
    }

    /// A HEADERS frame, then CONTINUATIONs where the block is cut.
    fn headers(&self, writer: &mut Writer, stream: u32, block: &[u8], end_stream: bool) {
        let mut pieces = Vec::new();
        let mut rest = block;
        for &cut in &self.cuts {
            let n = usize::from(cut).min(rest.len());
            let (piece, after) = rest.split_at(n);
            pieces.push(piece);
            rest = after;
        }
        pieces.push(rest);
        let mut flags = if end_stream { END_STREAM } else { 0 };
        if pieces.len() == 1 {
            flags |= END_HEADERS;
        }
        let mut payload = Vec::new();
        if let Some(pad) = self.pad {
            flags |= PADDED;
            payload.push(pad);
        }
        if let Some(priority) = self.priority {
            flags |= PRIORITY_FLAG;
            let on = writer.stream(priority.on) | if priority.exclusive { 1 << 31 } else { 0 };
            payload.extend_from_slice(&on.to_be_bytes());
            payload.push(priority.weight);
        }
        payload.extend_from_slice(pieces[0]);
        if let Some(pad) = self.pad {
            payload.resize(payload.len() + usize::from(pad), 0);
        }
        writer.frame(HEADERS, flags, stream, &payload);
        for (i, piece) in pieces.iter().enumerate().skip(1) {
            let flags = if i + 1 == pieces.len() {
                END_HEADERS
            } else {
                0
            };
            writer.frame(CONTINUATION, flags, stream, piece);
        }
    }

    /// The HPACK block of `fields`, each in its representation.
    fn block(&self, fields: &[Field], writer: &mut Writer, first: bool) -> Vec<u8> {
        let mut block = Vec::new();
        match (self.size_update, first) {
            (Some(SizeUpdate::Within(size)), true) => {
                let size = usize::from(size) % (TABLE_SIZE + 1);
                push_integer(&mut block, 0x20, 5, size);
                writer.table.resize(size);
            }
            (Some(SizeUpdate::Beyond), true) => push_integer(&mut block, 0x20, 5, TABLE_SIZE + 1),
            _ => {}
        }
        for (i, (name, value)) in fields.iter().enumerate() {
            let encoding = cycle(&self.encodings, i).unwrap_or(Encoding::Indexing);
            let huffman = cycle(&self.huffman, i).unwrap_or(false);
            let entries = writer.table.sizes.len();
            match encoding {
                // Dynamic entries follow the 61 static ones (section 2.3.3).
                Encoding::Reference(k) if entries > 0 => {
                    push_integer(&mut block, 0x80, 7, 62 + usize::from(k) % entries);
                }
                Encoding::BadReference => push_integer(&mut block, 0x80, 7, 62 + entries),
                Encoding::Indexing | Encoding::Reference(_) => {
                    block.push(0x40);
                    push_string(&mut block, name, huffman);
                    push_string(&mut block, value, huffman);
                    writer.table.insert(name, value);
                }
                Encoding::Plain | Encoding::Never => {
                    block.push(if matches!(encoding, Encoding::Never) {
                        0x10
                    } else {
                        0
                    });
                    push_string(&mut block, name, huffman);
                    push_string(&mut block, value, huffman);
                }
                Encoding::NamedByIndex => {
                    match STATIC_NAMES
                        .iter()
                        .find(|(n, _)| n.as_bytes() == name.as_slice())
                    {
                        Some(&(_, index)) => push_integer(&mut block, 0x00, 4, index),
                        None => {
                            block.push(0);
                            push_string(&mut block, name, huffman);
                        }
                    }
                    push_string(&mut block, value, huffman);
                }
            }
        }
        block
    }
}

type Field = (Vec<u8>, Vec<u8>);

fn cycle<T: Copy>(list: &[T], i: usize) -> Option<T> {
    match list.len() {
        0 => None,
        n => list.get(i % n).copied(),
    }
}

fn spoil(fields: &mut Vec<Field>, spoil: Spoil) {
    let pseudo = fields
        .iter()
        .take_while(|(n, _)| n.starts_with(b":"))
        .count();
    let field = |name: &[u8], value: &[u8]| (name.to_vec(), value.to_vec());
    match spoil {
        Spoil::None => {}
        Spoil::Uppercase => match fields.get_mut(pseudo) {
            Some((name, _)) => name.make_ascii_uppercase(),
            None => fields.push(field(b"User-Agent", b"x")),
        },
        Spoil::Drop(k) if pseudo > 0 => {
            fields.remove(usize::from(k) % pseudo);
        }
        Spoil::Twice(k) if pseudo > 0 => {
            let again = fields[usize::from(k) % pseudo].clone();
            fields.insert(pseudo, again);
        }
        Spoil::Drop(_) | Spoil::Twice(_) => {}
        Spoil::Late => {
            fields.insert(pseudo, field(b"accept", b"*/*"));
            fields.push(field(b":scheme", b"http"));
        }
        Spoil::Unknown => fields.insert(0, field(b":protocol", b"websocket")),
        Spoil::Status => fields.insert(0, field(b":status", b"200")),
        Spoil::Connection => fields.push(field(b"connection", b"keep-alive")),
        Spoil::TeGzip => fields.push(field(b"te", b"gzip")),
        Spoil::TeTrailers => fields.push(field(b"te", b"trailers")),
        Spoil::EmptyPath => {
            for (name, value) in fields.iter_mut() {
                if name == b":path" {
                    value.clear();
                }
            }
        }
        Spoil::Crumbs => {
            fields.push(field(b"cookie", b"a=1"));
            fields.push(field(b"cookie", b"b=2"));
        }
    }
}

/// The names of RFC 7541 Appendix A a request may carry, and their index.
const STATIC_NAMES: &[(&str, usize)] = &[
    (":authority", 1),
    (":method", 2),
    (":path", 4),
    (":scheme", 6),
    ("accept-encoding", 16),
    ("accept", 19),
    ("authorization", 23),
    ("content-length", 28),
    ("cookie", 32),
    ("expect", 35),
    ("host", 38),
    ("if-match", 39),
    ("if-modified-since", 40),
    ("if-none-match", 41),
    ("if-range", 42),
    ("if-unmodified-since", 43),
    ("range", 50),
    ("referer", 51),
    ("transfer-encoding", 57),
    ("user-agent", 58),
];

/// An integer with an N-bit prefix (RFC 7541 section 5.1).
fn push_integer(out: &mut Vec<u8>, pattern: u8, prefix: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(pattern | value as u8);
        return;
    }
    out.push(pattern | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A string literal (section 5.2), Huffman-coded or raw.
fn push_string(out: &mut Vec<u8>, bytes: &[u8], huffman: bool) {
    if huffman {
        let coded = crate::h2::huffman_encode(bytes);
        push_integer(out, 0x80, 7, coded.len());
        out.extend_from_slice(&coded);
    } else {
        push_integer(out, 0x00, 7, bytes.len());
        out.extend_from_slice(bytes);
    }
}

/// The connection's other frames.
#[derive(Clone, Debug)]
enum Control {
    Settings(Vec<SettingChoice>),
    SettingsAck,
    Ping {
        ack: bool,
    },
    WindowUpdate {
        stream: StreamChoice,
        increment: Increment,
    },
    Reset {
        stream: StreamChoice,
        code: u8,
    },
    Priority {
        stream: StreamChoice,
        on: StreamChoice,
    },
    GoAway {
        code: u8,
    },
    /// DATA outside any request's framing.
    Data {
        stream: StreamChoice,
        len: u16,
        end: bool,
    },
    /// A type RFC 9113 does not define, which must be ignored.
    Unknown {
        kind: u8,
        stream: StreamChoice,
        len: u8,
    },
    /// Anything at all.
    Raw {
        kind: u8,
        flags: u8,
        stream: StreamChoice,
        payload: Vec<u8>,
    },
}

impl<'a> Arbitrary<'a> for Control {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[3, 1, 2, 4, 3, 1, 1, 2, 1, 1])? {
            0 => Control::Settings(u.arbitrary()?),
            1 => Control::SettingsAck,
            2 => Control::Ping {
                ack: u.arbitrary()?,
            },
            3 => Control::WindowUpdate {
                stream: u.arbitrary()?,
                increment: u.arbitrary()?,
            },
            4 => Control::Reset {
                stream: u.arbitrary()?,
                code: u.int_in_range(0..=14)?,
            },
            5 => Control::Priority {
                stream: u.arbitrary()?,
                on: u.arbitrary()?,
            },
            6 => Control::GoAway {
                code: u.int_in_range(0..=14)?,
            },
            7 => Control::Data {
                stream: u.arbitrary()?,
                len: u.arbitrary()?,
                end: u.arbitrary()?,
            },
            8 => Control::Unknown {
                kind: u.int_in_range(10..=255)?,
                stream: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            _ => Control::Raw {
                kind: u.int_in_range(0..=10)?,
                flags: u.arbitrary()?,
                stream: u.arbitrary()?,
                payload: u.arbitrary()?,
            },
        })
    }
}

impl Control {
    fn write(&self, writer: &mut Writer) {
        match self {
            Control::Settings(settings) => {
                let mut payload = Vec::new();
                for setting in settings {
                    setting.write(&mut payload);
                }
                writer.frame(SETTINGS, 0, 0, &payload);
            }
            Control::SettingsAck => writer.frame(SETTINGS, ACK, 0, &[]),
            Control::Ping { ack } => {
                let flags = if *ack { ACK } else { 0 };
                writer.frame(PING, flags, 0, b"pingpong");
            }
            Control::WindowUpdate { stream, increment } => {
                let stream = writer.stream(*stream);
                writer.frame(WINDOW_UPDATE, 0, stream, &increment.value().to_be_bytes());
            }
            Control::Reset { stream, code } => {
                let stream = writer.stream(*stream);
                writer.frame(RST_STREAM, 0, stream, &u32::from(*code).to_be_bytes());
            }
            Control::Priority { stream, on } => {
                let stream = writer.stream(*stream);
                let mut payload = writer.stream(*on).to_be_bytes().to_vec();
                payload.push(15);
                writer.frame(PRIORITY, 0, stream, &payload);
            }
            Control::GoAway { code } => {
                let last = writer.opened.last().copied().unwrap_or(0);
                let mut payload = last.to_be_bytes().to_vec();
                payload.extend_from_slice(&u32::from(*code).to_be_bytes());
                writer.frame(GOAWAY, 0, 0, &payload);
            }
            Control::Data { stream, len, end } => {
                let stream = writer.stream(*stream);
                let flags = if *end { END_STREAM } else { 0 };
                let payload = vec![b'd'; usize::from(*len) % 20_000];
                writer.frame(DATA, flags, stream, &payload);
            }
            Control::Unknown { kind, stream, len } => {
                let stream = writer.stream(*stream);
                writer.frame(*kind, 0xff, stream, &vec![0; usize::from(*len)]);
            }
            Control::Raw {
                kind,
                flags,
                stream,
                payload,
            } => {
                let stream = writer.stream(*stream);
                writer.frame(*kind, *flags, stream, payload);
            }
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Increment {
    One,
    Some(u16),
    /// 2^31 - 1: enough, once more, to overflow a window.
    Most,
    /// Zero: a protocol error.
    Zero,
    Any(u32),
}

impl Increment {
    fn value(self) -> u32 {
        match self {
            Increment::One => 1,
            Increment::Some(n) => u32::from(n),
            Increment::Most => 0x7fff_ffff,
            Increment::Zero => 0,
            Increment::Any(n) => n,
        }
    }
}

/// A SETTINGS parameter (section 6.5.2), or one not defined.
#[derive(Arbitrary, Clone, Copy, Debug)]
struct SettingChoice {
    id: SettingId,
    value: SettingValue,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum SettingId {
    HeaderTableSize,
    EnablePush,
    MaxConcurrentStreams,
    InitialWindowSize,
    MaxFrameSize,
    MaxHeaderListSize,
    Other(u16),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum SettingValue {
    Zero,
    One,
    Small(u16),
    /// 2^14 and 2^24 - 1, the frame size's bounds; 2^31 - 1, the window's.
    FrameFloor,
    FrameCeiling,
    WindowCeiling,
    Any(u32),
}

impl SettingChoice {
    fn write(&self, out: &mut Vec<u8>) {
        let id: u16 = match self.id {
            SettingId::HeaderTableSize => 1,
            SettingId::EnablePush => 2,
            SettingId::MaxConcurrentStreams => 3,
            SettingId::InitialWindowSize => 4,
            SettingId::MaxFrameSize => 5,
            SettingId::MaxHeaderListSize => 6,
            SettingId::Other(id) => id,
        };
        let value: u32 = match self.value {
            SettingValue::Zero => 0,
            SettingValue::One => 1,
            SettingValue::Small(n) => u32::from(n),
            SettingValue::FrameFloor => 1 << 14,
            SettingValue::FrameCeiling => (1 << 24) - 1,
            SettingValue::WindowCeiling => 0x7fff_ffff,
            SettingValue::Any(n) => n,
        };
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Most generated conversations carry requests the server answers: the
    /// generator reaches past the frame layer, into the application.
    #[test]
    fn conversations_from_any_bytes_reach_the_application() {
        let site = super::super::FixtureSite::new().expect("a fixture site");
        let (mut built, mut answered) = (0, 0);
        for seed in 0..300u32 {
            let bytes: Vec<u8> = (0..512u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 7919) >> 11) as u8)
                .collect();
            let Ok(conversation) = H2Conversation::arbitrary(&mut Unstructured::new(&bytes)) else {
                continue;
            };
            built += 1;
            let wire = conversation.to_bytes();
            assert!(wire.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
            let transcript = site.converse(&wire, &[]);
            // A HEADERS frame from the server: some stream got an answer.
            if answered_a_stream(&transcript.output) {
                answered += 1;
            }
        }
        assert!(
            built >= 250,
            "only {built} of 300 inputs made conversations"
        );
        assert!(answered >= built / 3, "{answered} of {built} were answered");
    }

    /// Whether the server's frames include a HEADERS frame on a stream.
    fn answered_a_stream(mut output: &[u8]) -> bool {
        while output.len() >= 9 {
            let len =
                usize::from(output[0]) << 16 | usize::from(output[1]) << 8 | usize::from(output[2]);
            let stream = u32::from_be_bytes([output[5], output[6], output[7], output[8]]);
            if output[3] == HEADERS && stream != 0 {
                return true;
            }
            output = output.get(9 + len..).unwrap_or_default();
        }
        false
    }
}
