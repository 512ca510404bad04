//! Requests with a structure, built from arbitrary bytes (the `arbitrary`
//! crate): the generator behind the `session_requests` fuzz target and the
//! property test in `make test`.
//!
//! Raw bytes rarely get past a request line, so most of what the application
//! does would go unexercised. A [`Conversation`] is requests whose parts are
//! chosen: a method (known, unknown, lowercase, raw bytes), a target built from
//! the fixture site's names, arbitrary Unicode, raw bytes and percent-escapes
//! (well formed and not), a set of the headers the server reads (Host, Range,
//! the If-* family, Accept-Encoding, Content-Length, Transfer-Encoding,
//! Expect, Connection, User-Agent, Referer, or any name) with values that are
//! meaningful, arbitrary text or raw bytes, and a body framed as declared,
//! misframed, or chunked (well or badly).

use arbitrary::{Arbitrary, Unstructured};

use base64::Engine as _;

use super::site::{AUTH_PASSWORD, AUTH_USER, STATUS_PATH};

/// An `Authorization` value for `user:password`.
fn basic(credentials: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    format!("Basic {token}")
}

/// Requests sent back to back on one connection, and where the client's writes
/// are cut.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub requests: Vec<Request>,
    pub cuts: Vec<u16>,
}

impl<'a> Arbitrary<'a> for Conversation {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = u.int_in_range(1..=8)?;
        let requests = (0..count)
            .map(|_| Request::arbitrary(u))
            .collect::<arbitrary::Result<_>>()?;
        Ok(Conversation {
            requests,
            cuts: u.arbitrary()?,
        })
    }
}

impl Conversation {
    /// The bytes a client would send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for request in &self.requests {
            request.write(&mut out);
        }
        out
    }

    pub fn cuts(&self) -> Vec<usize> {
        self.cuts.iter().map(|&c| usize::from(c)).collect()
    }
}

/// Picks an index with the given weights. When the input runs out the
/// first (the most ordinary choice) comes back, so short inputs still make
/// real requests.
pub(super) fn pick(u: &mut Unstructured<'_>, weights: &[u32]) -> arbitrary::Result<usize> {
    let total: u32 = weights.iter().sum();
    let mut roll = u.int_in_range(0..=total.saturating_sub(1))?;
    for (index, &weight) in weights.iter().enumerate() {
        if roll < weight {
            return Ok(index);
        }
        roll -= weight;
    }
    Ok(0)
}

/// Arbitrary Unicode with no space, control character, `?` or `#`: text that
/// stays inside one part of a request line.
fn safe_text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let text: String = u.arbitrary()?;
    Ok(text
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '?' | '#'))
        .take(48)
        .collect())
}

#[derive(Clone, Debug)]
pub struct Request {
    method: MethodChoice,
    target: Target,
    version: VersionChoice,
    host: HostChoice,
    login: LoginChoice,
    headers: Vec<Header>,
    body: BodyChoice,
}

impl<'a> Arbitrary<'a> for Request {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let header_count = pick(u, &[4, 4, 3, 2, 1])?;
        Ok(Request {
            method: MethodChoice::arbitrary(u)?,
            target: Target::arbitrary(u)?,
            version: VersionChoice::arbitrary(u)?,
            host: HostChoice::arbitrary(u)?,
            login: LoginChoice::arbitrary(u)?,
            headers: (0..header_count)
                .map(|_| Header::arbitrary(u))
                .collect::<arbitrary::Result<_>>()?,
            body: BodyChoice::arbitrary(u)?,
        })
    }
}

/// The `Authorization` header, as the fixture's password gate sees it (its
/// other shapes come from the arbitrary headers).
#[derive(Clone, Copy, Debug)]
enum LoginChoice {
    None,
    Good,
    Bad,
}

impl<'a> Arbitrary<'a> for LoginChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[6, 2, 1])? {
            0 => LoginChoice::None,
            1 => LoginChoice::Good,
            _ => LoginChoice::Bad,
        })
    }
}

#[derive(Clone, Debug)]
enum MethodChoice {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Connect,
    Patch,
    Unknown,
    Lowercase,
    Raw(Vec<u8>),
}

impl<'a> Arbitrary<'a> for MethodChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        use MethodChoice::*;
        Ok(match pick(u, &[12, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1])? {
            0 => Get,
            1 => Head,
            2 => Post,
            3 => Put,
            4 => Delete,
            5 => Options,
            6 => Trace,
            7 => Connect,
            8 => Patch,
            9 => Unknown,
            10 => Lowercase,
            _ => Raw(u.arbitrary()?),
        })
    }
}

#[derive(Clone, Debug)]
struct Target {
    form: Form,
    path: PathChoice,
    query: Option<Vec<Piece>>,
}

impl<'a> Arbitrary<'a> for Target {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let form = match pick(u, &[20, 2, 1])? {
            0 => Form::Origin,
            1 => Form::Absolute {
                https: u.arbitrary()?,
                authority: Authority::arbitrary(u)?,
            },
            _ => Form::Asterisk,
        };
        let path = match pick(u, &[3, 2])? {
            0 => PathChoice::Route(Route::arbitrary(u)?),
            _ => {
                let count = u.int_in_range(0..=8)?;
                PathChoice::Pieces(
                    (0..count)
                        .map(|_| Piece::arbitrary(u))
                        .collect::<arbitrary::Result<_>>()?,
                )
            }
        };
        let query = match pick(u, &[4, 1])? {
            0 => None,
            _ => Some(vec![Piece::arbitrary(u)?, Piece::arbitrary(u)?]),
        };
        Ok(Target { form, path, query })
    }
}

#[derive(Clone, Debug)]
enum Form {
    Origin,
    Absolute { https: bool, authority: Authority },
    Asterisk,
}

#[derive(Arbitrary, Clone, Debug)]
enum Authority {
    Plain,
    WithPort(u16),
    Literal,
    Text(String),
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
enum PathChoice {
    /// A whole path the site or the router answers to.
    Route(Route),
    /// A path assembled from pieces.
    Pieces(Vec<Piece>),
}

/// Whole paths that reach each part of the application.
#[derive(Clone, Debug)]
enum Route {
    Root,
    File(Name),
    Echo(String),
    UserAgent,
    Stored,
    NewFile(String),
    Traversal,
    EncodedTraversal,
    /// The status page, or its metrics.
    Status {
        metrics: bool,
    },
}

impl<'a> Arbitrary<'a> for Route {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[2, 8, 3, 1, 2, 2, 1, 1, 1])? {
            0 => Route::Root,
            1 => Route::File(Name::arbitrary(u)?),
            2 => Route::Echo(safe_text(u)?),
            3 => Route::UserAgent,
            4 => Route::Stored,
            5 => Route::NewFile(safe_text(u)?),
            6 => Route::Traversal,
            7 => Route::EncodedTraversal,
            _ => Route::Status {
                metrics: u.arbitrary()?,
            },
        })
    }
}

/// One piece of a path: the separator, a name the site has, or anything.
#[derive(Clone, Debug)]
enum Piece {
    Slash,
    Dot,
    DotDot,
    Name(Name),
    SafeText(String),
    Text(String),
    Raw(Vec<u8>),
    /// `%XX`.
    Escape(u8),
    /// `%` and one byte: rarely a valid escape.
    StrayPercent(u8),
}

impl<'a> Arbitrary<'a> for Piece {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[4, 1, 1, 5, 3, 1, 1, 2, 1])? {
            0 => Piece::Slash,
            1 => Piece::Dot,
            2 => Piece::DotDot,
            3 => Piece::Name(Name::arbitrary(u)?),
            4 => Piece::SafeText(safe_text(u)?),
            5 => Piece::Text(u.arbitrary()?),
            6 => Piece::Raw(u.arbitrary()?),
            7 => Piece::Escape(u.arbitrary()?),
            _ => Piece::StrayPercent(u.arbitrary()?),
        })
    }
}

/// The names the fixture site and the router answer to.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Name {
    Index,
    Resume,
    ResumeEncoded,
    Spaced,
    Style,
    Big,
    Docs,
    DocsSlash,
    DocsLink,
    Empty,
    Listed,
    InLink,
    OutLink,
    Env,
    Echo,
    UserAgent,
    Files,
    Stored,
}

impl Name {
    fn as_str(self) -> &'static str {
        match self {
            Name::Index => "index.html",
            Name::Resume => "r\u{e9}sum\u{e9}.txt",
            Name::ResumeEncoded => "r%C3%A9sum%C3%A9.txt",
            Name::Spaced => "a%20b.txt",
            Name::Style => "style.css",
            Name::Big => "big.bin",
            Name::Docs => "docs",
            Name::DocsSlash => "docs/",
            Name::DocsLink => "docs-link/guide.txt",
            Name::Empty => "empty/",
            Name::Listed => "listed/",
            Name::InLink => "in-link.css",
            Name::OutLink => "out-link.txt",
            Name::Env => ".env",
            Name::Echo => "echo",
            Name::UserAgent => "user-agent",
            Name::Files => "files",
            Name::Stored => "stored.txt",
        }
    }
}

#[derive(Clone, Debug)]
enum VersionChoice {
    Http11,
    Http10,
    Http20,
    Raw(Vec<u8>),
}

impl<'a> Arbitrary<'a> for VersionChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[24, 3, 1, 1])? {
            0 => VersionChoice::Http11,
            1 => VersionChoice::Http10,
            2 => VersionChoice::Http20,
            _ => VersionChoice::Raw(u.arbitrary()?),
        })
    }
}

#[derive(Clone, Debug)]
enum HostChoice {
    Valid,
    Missing,
    Twice,
    Value(Vec<ValuePiece>),
}

impl<'a> Arbitrary<'a> for HostChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[24, 1, 1, 2])? {
            0 => HostChoice::Valid,
            1 => HostChoice::Missing,
            2 => HostChoice::Twice,
            _ => HostChoice::Value(vec![ValuePiece::arbitrary(u)?]),
        })
    }
}

#[derive(Clone, Debug)]
struct Header {
    name: HeaderName,
    value: Vec<ValuePiece>,
}

impl<'a> Arbitrary<'a> for Header {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = 1 + pick(u, &[4, 2, 1])?;
        Ok(Header {
            name: HeaderName::arbitrary(u)?,
            value: (0..count)
                .map(|_| ValuePiece::arbitrary(u))
                .collect::<arbitrary::Result<_>>()?,
        })
    }
}

/// The fields the server reads; the framing ones (Content-Length,
/// Transfer-Encoding) come mostly from the body's own framing, and only
/// rarely from here, where they collide with it.
#[derive(Clone, Debug)]
enum HeaderName {
    Range,
    IfNoneMatch,
    IfModifiedSince,
    IfMatch,
    IfUnmodifiedSince,
    IfRange,
    AcceptEncoding,
    ContentLength,
    TransferEncoding,
    Expect,
    Connection,
    UserAgent,
    Referer,
    Authorization,
    Accept,
    Raw(Vec<u8>),
}

impl<'a> Arbitrary<'a> for HeaderName {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        use HeaderName::*;
        Ok(
            match pick(u, &[3, 2, 2, 1, 1, 2, 3, 1, 1, 1, 2, 2, 1, 2, 1, 1])? {
                0 => Range,
                1 => IfNoneMatch,
                2 => IfModifiedSince,
                3 => IfMatch,
                4 => IfUnmodifiedSince,
                5 => IfRange,
                6 => AcceptEncoding,
                7 => ContentLength,
                8 => TransferEncoding,
                9 => Expect,
                10 => Connection,
                11 => UserAgent,
                12 => Referer,
                13 => Authorization,
                14 => Accept,
                _ => Raw(u.arbitrary()?),
            },
        )
    }
}

#[derive(Clone, Debug)]
enum ValuePiece {
    Known(Known),
    SafeText(String),
    Text(String),
    Raw(Vec<u8>),
}

impl<'a> Arbitrary<'a> for ValuePiece {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[10, 4, 1, 1])? {
            0 => ValuePiece::Known(Known::arbitrary(u)?),
            1 => ValuePiece::SafeText(safe_text(u)?),
            2 => ValuePiece::Text(u.arbitrary()?),
            _ => ValuePiece::Raw(u.arbitrary()?),
        })
    }
}

/// Values the server gives a meaning to.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Known {
    Range(u16, u16),
    SuffixRange(u16),
    OpenRange(u16),
    Comma,
    Gzip,
    Brotli,
    Star,
    ZeroWeight,
    Chunked,
    Close,
    KeepAlive,
    Continue,
    EntityTag,
    WeakTag,
    Date,
    Number(u32),
    /// `Basic` and the fixture user's right password.
    GoodLogin,
    /// `Basic` and a wrong one.
    BadLogin,
    /// The scheme alone, for whatever follows.
    Basic,
    Json,
}

#[derive(Clone, Debug)]
enum BodyChoice {
    None,
    /// The bytes, with a Content-Length that says so.
    Declared(Vec<u8>),
    /// The bytes, with a Content-Length that may not.
    Misdeclared {
        bytes: Vec<u8>,
        declared: u16,
    },
    /// Chunks, an optional extension on each size line, optional trailers.
    Chunked {
        chunks: Vec<Vec<u8>>,
        extension: Option<ChunkExtension>,
        trailer: Option<(String, String)>,
    },
    /// `Transfer-Encoding: chunked` and then whatever.
    BadChunked(Vec<u8>),
}

/// What follows a chunk size: the forms RFC 9112 section 7.1.1 allows, the
/// ones that differing parsers read differently (the smuggling vectors), and
/// anything at all.
#[derive(Clone, Debug)]
enum ChunkExtension {
    /// `;name`
    Name(String),
    /// `;name=token`
    Token(String, String),
    /// `;name="text"`, with `"` and `\` escaped.
    Quoted(String, String),
    /// A known edge: an empty name, an unterminated quote, whitespace, LF.
    Edge(&'static str),
    /// Whatever the bytes say.
    Raw(String),
}

/// Extensions on the edge of the grammar, each refused or accepted on purpose.
const CHUNK_EXTENSION_EDGES: &[&str] = &[
    ";",
    "; ",
    ";;a",
    ";=b",
    ";a=",
    ";a=\"abc",
    ";a=\"abc\\\"",
    ";a=\"x\" ",
    ";a ",
    " ;a",
    ";a=\"x\ny\"",
    ";a\nb",
    ";a=\"\\\"\"",
    ";a = b ; c",
];

impl<'a> Arbitrary<'a> for ChunkExtension {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[2, 2, 2, 3, 1])? {
            0 => ChunkExtension::Name(u.arbitrary()?),
            1 => ChunkExtension::Token(u.arbitrary()?, u.arbitrary()?),
            2 => ChunkExtension::Quoted(u.arbitrary()?, u.arbitrary()?),
            3 => ChunkExtension::Edge(u.choose(CHUNK_EXTENSION_EDGES)?),
            _ => ChunkExtension::Raw(u.arbitrary()?),
        })
    }
}

impl ChunkExtension {
    /// The text after the size, `;` included.
    fn text(&self) -> String {
        // Names and tokens from arbitrary text: its token characters, or one.
        let token = |text: &str| {
            let kept: String = text
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
                .collect();
            if kept.is_empty() {
                "x".to_owned()
            } else {
                kept
            }
        };
        match self {
            ChunkExtension::Name(name) => format!(";{}", token(name)),
            ChunkExtension::Token(name, value) => format!(";{}={}", token(name), token(value)),
            ChunkExtension::Quoted(name, value) => {
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                format!(";{}=\"{escaped}\"", token(name))
            }
            ChunkExtension::Edge(text) => (*text).to_owned(),
            ChunkExtension::Raw(text) => format!(";{text}"),
        }
    }
}

impl<'a> Arbitrary<'a> for BodyChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match pick(u, &[10, 4, 1, 3, 1])? {
            0 => BodyChoice::None,
            1 => BodyChoice::Declared(u.arbitrary()?),
            2 => BodyChoice::Misdeclared {
                bytes: u.arbitrary()?,
                declared: u.arbitrary()?,
            },
            3 => BodyChoice::Chunked {
                chunks: u.arbitrary()?,
                extension: u.arbitrary()?,
                trailer: u.arbitrary()?,
            },
            _ => BodyChoice::BadChunked(u.arbitrary()?),
        })
    }
}

impl Request {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.token());
        out.push(b' ');
        self.target.write(out);
        out.push(b' ');
        self.version.write(out);
        out.extend_from_slice(b"\r\n");
        match &self.host {
            HostChoice::Valid => out.extend_from_slice(b"Host: example.org\r\n"),
            HostChoice::Missing => {}
            HostChoice::Twice => out.extend_from_slice(b"Host: a.example\r\nHost: b.example\r\n"),
            HostChoice::Value(value) => write_field(out, b"Host", value),
        }
        let login = match self.login {
            LoginChoice::None => None,
            LoginChoice::Good => Some(Known::GoodLogin),
            LoginChoice::Bad => Some(Known::BadLogin),
        };
        if let Some(login) = login {
            write_field(out, b"Authorization", &[ValuePiece::Known(login)]);
        }
        for header in &self.headers {
            write_field(out, header.name.bytes(), &header.value);
        }
        self.body.write(out);
    }
}

/// A request as HTTP/2 carries it: its fields in order (the pseudo-fields
/// first, names in lower case, as section 8.3 asks; `h2_conversation`
/// spoils them on purpose), its body's bytes and its trailers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct H2Message {
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Request {
    /// What this request says, said in HTTP/2: the same method, target,
    /// host, headers and body, its HTTP/1.1 framing dropped (a chunked body
    /// is its chunks' bytes; a misdeclared length stays misdeclared).
    pub fn h2_message(&self) -> H2Message {
        let mut message = H2Message::default();
        // What HTTP/1.1 says with white space around a field's value, HTTP/2
        // says without (RFC 9113 section 8.2.1); the request line's parts
        // are kept as they are.
        let field = |name: &[u8], value: Vec<u8>| {
            if name.starts_with(b":") {
                return (name.to_vec(), value);
            }
            (name.to_ascii_lowercase(), trim_ows(&value))
        };
        message
            .fields
            .push(field(b":method", self.method.token().to_vec()));
        let https = matches!(self.target.form, Form::Absolute { https: true, .. });
        let scheme: &[u8] = if https { b"https" } else { b"http" };
        message.fields.push(field(b":scheme", scheme.to_vec()));
        let mut host = None;
        let authority = match (&self.target.form, &self.host) {
            (Form::Absolute { authority, .. }, _) => {
                let mut out = Vec::new();
                authority.write(&mut out);
                Some(out)
            }
            (_, HostChoice::Valid) => Some(b"example.org".to_vec()),
            (_, HostChoice::Missing) => None,
            (_, HostChoice::Twice) => {
                host = Some(b"b.example".to_vec());
                Some(b"a.example".to_vec())
            }
            // A Host field's value, so trimmed as one.
            (_, HostChoice::Value(value)) => Some(trim_ows(&value_bytes(value))),
        };
        if let Some(authority) = authority {
            message.fields.push(field(b":authority", authority));
        }
        let mut path = Vec::new();
        self.target.write_path(&mut path);
        message.fields.push(field(b":path", path));
        if let Some(host) = host {
            message.fields.push(field(b"host", host));
        }
        let login = match self.login {
            LoginChoice::None => None,
            LoginChoice::Good => Some(Known::GoodLogin),
            LoginChoice::Bad => Some(Known::BadLogin),
        };
        if let Some(login) = login {
            let value = value_bytes(&[ValuePiece::Known(login)]);
            message.fields.push(field(b"authorization", value));
        }
        for header in &self.headers {
            let value = value_bytes(&header.value);
            message.fields.push(field(header.name.bytes(), value));
        }
        match &self.body {
            BodyChoice::None => {}
            BodyChoice::Declared(bytes) => {
                let length = bytes.len().to_string().into_bytes();
                message.fields.push(field(b"content-length", length));
                message.body = bytes.clone();
            }
            BodyChoice::Misdeclared { bytes, declared } => {
                let length = declared.to_string().into_bytes();
                message.fields.push(field(b"content-length", length));
                message.body = bytes.clone();
            }
            BodyChoice::Chunked {
                chunks, trailer, ..
            } => {
                message.body = chunks.concat();
                if let Some((name, value)) = trailer {
                    let value = value.as_bytes().to_vec();
                    message.trailers.push(field(name.as_bytes(), value));
                }
            }
            BodyChoice::BadChunked(bytes) => {
                // Connection-specific: malformed in HTTP/2 (section 8.2.2).
                message
                    .fields
                    .push(field(b"transfer-encoding", b"chunked".to_vec()));
                message.body = bytes.clone();
            }
        }
        message
    }
}

impl Request {
    /// The bytes of this request alone, in HTTP/1.1.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    pub fn is_head(&self) -> bool {
        matches!(self.method, MethodChoice::Head)
    }

    /// Whether HTTP/2 can say what this request says in HTTP/1.1, so the
    /// two must be answered alike: an HTTP/1.1 request (1.0 has other
    /// defaults) whose body is framed as it declares (a misframed body is
    /// HTTP/1.1's own question) and that names no connection-specific field
    /// (which HTTP/2 refuses outright, section 8.2.2), no second
    /// Content-Length, nor an empty Host
    /// (HTTP/1.1 allows one, section 8.3.1 of RFC 9113 does not), nor is
    /// a CONNECT, nor an absolute target beside a Host other than one valid
    /// one (whose refusal is HTTP/1.1's alone).
    pub fn says_the_same_in_http2(&self) -> bool {
        let framed = matches!(
            self.body,
            BodyChoice::None | BodyChoice::Declared(_) | BodyChoice::Chunked { .. }
        );
        let connection_specific = self.headers.iter().any(|header| {
            matches!(
                header.name,
                HeaderName::Connection | HeaderName::TransferEncoding
            )
        });
        // A Content-Length among the arbitrary fields collides with the
        // body's own framing, which each protocol refuses its own way.
        let stray_length =
            (self.headers.iter()).any(|header| matches!(header.name, HeaderName::ContentLength));
        let empty_host =
            matches!(&self.host, HostChoice::Value(v) if trim_ows(&value_bytes(v)).is_empty());
        // HTTP/2's CONNECT has a form of its own (RFC 9113 section 8.5).
        let connect = matches!(self.method, MethodChoice::Connect);
        // Beside an absolute target HTTP/1.1 ignores Host but still wants
        // one, and one only, and valid (RFC 9112 section 3.2); HTTP/2 has
        // the target's authority as :authority and no Host to judge.
        let odd_host_beside_absolute = matches!(self.target.form, Form::Absolute { .. })
            && !matches!(self.host, HostChoice::Valid);
        matches!(self.version, VersionChoice::Http11)
            && framed
            && !connection_specific
            && !stray_length
            && !empty_host
            && !connect
            && !odd_host_beside_absolute
    }
}

/// `value` less the spaces and tabs around it (RFC 9110 section 5.5's OWS).
fn trim_ows(value: &[u8]) -> Vec<u8> {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default().to_vec()
}

fn value_bytes(value: &[ValuePiece]) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

impl MethodChoice {
    fn token(&self) -> &[u8] {
        match self {
            MethodChoice::Get => b"GET",
            MethodChoice::Head => b"HEAD",
            MethodChoice::Post => b"POST",
            MethodChoice::Put => b"PUT",
            MethodChoice::Delete => b"DELETE",
            MethodChoice::Options => b"OPTIONS",
            MethodChoice::Trace => b"TRACE",
            MethodChoice::Connect => b"CONNECT",
            MethodChoice::Patch => b"PATCH",
            MethodChoice::Unknown => b"BREW",
            MethodChoice::Lowercase => b"get",
            MethodChoice::Raw(bytes) => bytes,
        }
    }
}

impl Target {
    fn write(&self, out: &mut Vec<u8>) {
        if let Form::Absolute { https, authority } = &self.form {
            out.extend_from_slice(if *https { b"https://" } else { b"http://" });
            authority.write(out);
        }
        self.write_path(out);
    }

    /// The target less its scheme and authority: HTTP/2's `:path`.
    fn write_path(&self, out: &mut Vec<u8>) {
        if let Form::Asterisk = self.form {
            out.push(b'*');
            return;
        }
        out.push(b'/');
        match &self.path {
            PathChoice::Route(route) => route.write(out),
            PathChoice::Pieces(pieces) => {
                for piece in pieces {
                    piece.write(out);
                }
            }
        }
        if let Some(query) = &self.query {
            out.push(b'?');
            for piece in query {
                piece.write(out);
            }
        }
    }
}

impl Authority {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Authority::Plain => out.extend_from_slice(b"example.org"),
            Authority::WithPort(port) => {
                out.extend_from_slice(format!("example.org:{port}").as_bytes())
            }
            Authority::Literal => out.extend_from_slice(b"[::1]:4221"),
            Authority::Text(text) => out.extend_from_slice(text.as_bytes()),
            Authority::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

impl Route {
    fn write(&self, out: &mut Vec<u8>) {
        let path = match self {
            Route::Root => String::new(),
            Route::File(name) => name.as_str().to_owned(),
            Route::Echo(text) => format!("echo/{text}"),
            Route::UserAgent => "user-agent".to_owned(),
            Route::Stored => "files/stored.txt".to_owned(),
            Route::NewFile(name) => format!("files/{name}"),
            Route::Traversal => "docs/../../outside/secret.txt".to_owned(),
            Route::EncodedTraversal => "%2e%2e/outside%2Fsecret.txt".to_owned(),
            Route::Status { metrics } => {
                let page = STATUS_PATH.trim_start_matches('/');
                match metrics {
                    true => format!("{page}/metrics"),
                    false => page.to_owned(),
                }
            }
        };
        out.extend_from_slice(path.as_bytes());
    }
}

impl Piece {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Piece::Slash => out.push(b'/'),
            Piece::Dot => out.push(b'.'),
            Piece::DotDot => out.extend_from_slice(b".."),
            Piece::Name(name) => out.extend_from_slice(name.as_str().as_bytes()),
            Piece::SafeText(text) | Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
            Piece::Escape(byte) => out.extend_from_slice(format!("%{byte:02X}").as_bytes()),
            Piece::StrayPercent(byte) => out.extend_from_slice(&[b'%', *byte]),
        }
    }
}

impl VersionChoice {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            VersionChoice::Http11 => out.extend_from_slice(b"HTTP/1.1"),
            VersionChoice::Http10 => out.extend_from_slice(b"HTTP/1.0"),
            VersionChoice::Http20 => out.extend_from_slice(b"HTTP/2.0"),
            VersionChoice::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

impl HeaderName {
    fn bytes(&self) -> &[u8] {
        match self {
            HeaderName::Range => b"Range",
            HeaderName::IfNoneMatch => b"If-None-Match",
            HeaderName::IfModifiedSince => b"If-Modified-Since",
            HeaderName::IfMatch => b"If-Match",
            HeaderName::IfUnmodifiedSince => b"If-Unmodified-Since",
            HeaderName::IfRange => b"If-Range",
            HeaderName::AcceptEncoding => b"Accept-Encoding",
            HeaderName::ContentLength => b"Content-Length",
            HeaderName::TransferEncoding => b"Transfer-Encoding",
            HeaderName::Expect => b"Expect",
            HeaderName::Connection => b"Connection",
            HeaderName::UserAgent => b"User-Agent",
            HeaderName::Referer => b"Referer",
            HeaderName::Authorization => b"Authorization",
            HeaderName::Accept => b"Accept",
            HeaderName::Raw(bytes) => bytes,
        }
    }
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[ValuePiece]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    write_value(out, value);
    out.extend_from_slice(b"\r\n");
}

fn write_value(out: &mut Vec<u8>, value: &[ValuePiece]) {
    for piece in value {
        match piece {
            ValuePiece::Known(known) => known.write(out),
            ValuePiece::SafeText(text) | ValuePiece::Text(text) => {
                out.extend_from_slice(text.as_bytes());
            }
            ValuePiece::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

impl Known {
    fn write(self, out: &mut Vec<u8>) {
        let text = match self {
            Known::Range(first, last) => format!("bytes={first}-{last}"),
            Known::SuffixRange(n) => format!("bytes=-{n}"),
            Known::OpenRange(first) => format!("bytes={first}-"),
            Known::Comma => ", ".to_owned(),
            Known::Gzip => "gzip".to_owned(),
            Known::Brotli => "br".to_owned(),
            Known::Star => "*".to_owned(),
            Known::ZeroWeight => ";q=0".to_owned(),
            Known::Chunked => "chunked".to_owned(),
            Known::Close => "close".to_owned(),
            Known::KeepAlive => "keep-alive".to_owned(),
            Known::Continue => "100-continue".to_owned(),
            Known::EntityTag => "\"x\"".to_owned(),
            Known::WeakTag => "W/\"x\"".to_owned(),
            Known::Date => "Sat, 21 Nov 2026 00:00:00 GMT".to_owned(),
            Known::Number(n) => n.to_string(),
            Known::GoodLogin => basic(&format!("{AUTH_USER}:{AUTH_PASSWORD}")),
            Known::BadLogin => basic(&format!("{AUTH_USER}:not-{AUTH_PASSWORD}")),
            Known::Basic => "Basic ".to_owned(),
            Known::Json => "application/json".to_owned(),
        };
        out.extend_from_slice(text.as_bytes());
    }
}

impl BodyChoice {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            BodyChoice::None => out.extend_from_slice(b"\r\n"),
            BodyChoice::Declared(bytes) => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", bytes.len()).as_bytes(),
                );
                out.extend_from_slice(bytes);
            }
            BodyChoice::Misdeclared { bytes, declared } => {
                out.extend_from_slice(format!("Content-Length: {declared}\r\n\r\n").as_bytes());
                out.extend_from_slice(bytes);
            }
            BodyChoice::Chunked {
                chunks,
                extension,
                trailer,
            } => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let extension = extension
                    .as_ref()
                    .map(ChunkExtension::text)
                    .unwrap_or_default();
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    out.extend_from_slice(format!("{:x}{extension}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                if let Some((name, value)) = trailer {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            BodyChoice::BadChunked(bytes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                out.extend_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests_from_any_bytes() {
        let mut seen_valid = 0;
        for seed in 0..200u32 {
            let bytes: Vec<u8> = (0..256u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
                .collect();
            let Ok(conversation) = Conversation::arbitrary(&mut Unstructured::new(&bytes)) else {
                continue;
            };
            let wire = conversation.to_bytes();
            if wire.starts_with(b"GET /") || wire.starts_with(b"HEAD /") {
                seen_valid += 1;
            }
        }
        assert!(
            seen_valid > 0,
            "some conversations start like real requests"
        );
    }

    #[test]
    fn a_chosen_request_serializes_as_expected() {
        let request = Request {
            method: MethodChoice::Get,
            target: Target {
                form: Form::Origin,
                path: PathChoice::Pieces(vec![Piece::Name(Name::Resume)]),
                query: Some(vec![Piece::Text("q=1".into())]),
            },
            version: VersionChoice::Http11,
            host: HostChoice::Valid,
            login: LoginChoice::Good,
            headers: vec![Header {
                name: HeaderName::Range,
                value: vec![ValuePiece::Known(Known::Range(0, 4))],
            }],
            body: BodyChoice::Chunked {
                chunks: vec![b"abc".to_vec()],
                extension: None,
                trailer: None,
            },
        };
        let mut out = Vec::new();
        request.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /r\u{e9}sum\u{e9}.txt?q=1 HTTP/1.1\r\nHost: example.org\r\n\
             Authorization: Basic Zml4dHVyZTpvcGVuIHNlc2FtZQ==\r\nRange: bytes=0-4\r\n\
             Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        );
    }
}
