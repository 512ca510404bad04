//! A response as the application builds it: a status, header fields, and a body
//! made of chunks that are either bytes in memory or a range of an open file.
//!
//! The application never writes framing: `Content-Length`, `Date` and `Connection`
//! are the connection's to decide (see `conn.rs`), because they depend on the
//! request method, the protocol version and the fate of the connection.

use std::fs::File;
use std::sync::Arc;

use super::status::StatusCode;

/// One piece of a response body.
#[derive(Clone, Debug)]
pub(crate) enum Chunk {
    /// Bytes owned by this response (a generated page, compressed text).
    Bytes(Vec<u8>),
    /// A range of bytes shared with others (a file held in the in-memory cache).
    Shared {
        data: Arc<[u8]>,
        range: std::ops::Range<usize>,
    },
    /// `len` bytes of `file` from `offset`, sent without passing through user space.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

impl Chunk {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(bytes) => bytes.len() as u64,
            Chunk::Shared { range, .. } => range.len() as u64,
            Chunk::File { len, .. } => *len,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response body: its chunks in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Body {
    chunks: Vec<Chunk>,
}

impl Body {
    pub(crate) fn empty() -> Body {
        Body::default()
    }

    pub(crate) fn push(&mut self, chunk: Chunk) {
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
    }

    /// The body's length in bytes: what `Content-Length` will say.
    pub(crate) fn len(&self) -> u64 {
        self.chunks.iter().map(Chunk::len).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub(crate) fn into_chunks(self) -> Vec<Chunk> {
        self.chunks
    }

    #[cfg(test)]
    pub(crate) fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        let mut body = Body::empty();
        body.push(Chunk::Bytes(bytes));
        body
    }
}

impl From<Chunk> for Body {
    fn from(chunk: Chunk) -> Body {
        let mut body = Body::empty();
        body.push(chunk);
        body
    }
}

/// Header names the connection writes itself; the application must not.
const FRAMING_FIELDS: [&str; 4] = ["content-length", "transfer-encoding", "connection", "date"];

/// Header fields serialized as they go on the wire, each `Name: value\r\n`,
/// in the order added. Fields written once can be appended to any number of
/// responses as they are ([`Response::with_fields`]): a cached file's are,
/// on every hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields(Vec<u8>);

impl Fields {
    /// Adds a field. Values come from our own code, never unchecked from a
    /// request: a CR or LF in them would split the response, so such a field
    /// is left out.
    pub(crate) fn add(&mut self, name: &str, value: &str) {
        debug_assert!(
            !FRAMING_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)),
            "{name} is written by the connection"
        );
        let breaks = |text: &str| memchr::memchr2(b'\r', b'\n', text.as_bytes()).is_some();
        if breaks(name) || breaks(value) {
            debug_assert!(false, "header {name} contains a line break");
            return;
        }
        self.0.reserve(name.len() + value.len() + 4);
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value.as_bytes());
        self.0.extend_from_slice(b"\r\n");
    }

    /// The memory it holds, for whoever keeps fields around (the file cache).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.capacity()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Response {
    status: StatusCode,
    /// The head as it will be sent, so far: the status line, then the fields.
    /// The connection appends its own fields and sends this very buffer.
    head: Fields,
    body: Body,
    close: bool,
}

impl Response {
    pub(crate) fn new(status: StatusCode) -> Response {
        // Room for the status line, the usual few fields, a site's rules'
        // (security headers run long) and the connection's own, so that the
        // head is one allocation that rarely grows: a static file's head is
        // some 220 bytes before Content-Length and Date.
        let mut head = Vec::with_capacity(512);
        let code = status.as_u16();
        head.extend_from_slice(b"HTTP/1.1 ");
        // Status codes have three digits (RFC 9110 section 15).
        head.extend_from_slice(&[
            b'0' + (code / 100 % 10) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
            b' ',
        ]);
        head.extend_from_slice(status.reason().as_bytes());
        head.extend_from_slice(b"\r\n");
        Response {
            status,
            head: Fields(head),
            body: Body::empty(),
            close: false,
        }
    }

    /// A response whose body is `text`, as `text/plain` (exactly that: the
    /// HTTP-server challenge compares the header byte for byte).
    pub(crate) fn plain_text(status: StatusCode, text: impl Into<Vec<u8>>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain")
            .with_body(text.into())
    }

    /// The answer to a request that failed: the status line repeated as the body,
    /// so a person with curl or a browser sees what happened.
    pub(crate) fn error(status: StatusCode) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{status}\n").into_bytes())
    }

    /// Adds a header field. Values come from our own code, never unchecked from a
    /// request: a CR or LF in them would split the response.
    pub(crate) fn with_header(mut self, name: &str, value: impl AsRef<str>) -> Response {
        self.add_header(name, value);
        self
    }

    /// Appends the bytes as they are, with no formatting machinery: this runs
    /// for every field of every response.
    pub(crate) fn add_header(&mut self, name: &str, value: impl AsRef<str>) {
        self.head.add(name, value.as_ref());
    }

    /// Sets a header field, in place of any the response carries by that
    /// name (the code that answered added its own).
    pub(crate) fn set_header(&mut self, name: &str, value: &str) {
        self.set_headers(&[(name, value)]);
    }

    /// Sets each field of `fields` in place of any the response carries by
    /// that name, and removes those whose value is empty: what a site's
    /// rules do to every response they match. One pass over the head for
    /// them all, compacting its lines in place; nothing is allocated unless
    /// the head grows.
    pub(crate) fn set_headers(&mut self, fields: &[(&str, &str)]) {
        // Every response of a site passes here, most with no rule's fields.
        if fields.is_empty() {
            return;
        }
        let head = &mut self.head.0;
        // The status line first, then `Name: value\r\n` lines, as `Fields` wrote them.
        if let Some(status_end) = head.windows(2).position(|w| w == b"\r\n") {
            let (mut read, mut write) = (status_end + 2, status_end + 2);
            while read < head.len() {
                let end =
                    memchr::memchr(b'\n', &head[read..]).map_or(head.len(), |at| read + at + 1);
                let line = &head[read..end];
                // `Name:` starts the line: the colon's place rules out most
                // names before a byte of them is compared.
                let replaced = fields.iter().any(|(name, _)| {
                    let name = name.as_bytes();
                    line.get(name.len()) == Some(&b':')
                        && line[..name.len()].eq_ignore_ascii_case(name)
                });
                if !replaced {
                    // Until a line has gone, every line is where it stays.
                    if write != read {
                        head.copy_within(read..end, write);
                    }
                    write += end - read;
                }
                read = end;
            }
            head.truncate(write);
        }
        // One growth of the head for every field added, not one per field.
        let added = fields.iter().filter(|(_, value)| !value.is_empty());
        let room: usize = added.clone().map(|(n, v)| n.len() + v.len() + 4).sum();
        self.head.0.reserve(room);
        for (name, value) in added {
            self.head.add(name, value);
        }
    }

    /// Appends fields serialized (and checked) before.
    pub(crate) fn with_fields(mut self, fields: &Fields) -> Response {
        self.head.0.extend_from_slice(&fields.0);
        self
    }

    pub(crate) fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// Asks for the connection to close once this response has been sent.
    pub(crate) fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub(crate) fn body(&self) -> &Body {
        &self.body
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }

    /// The first value of a header field this response carries.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let text = std::str::from_utf8(&self.head.0).ok()?;
        // The status line first, then the fields.
        text.split("\r\n").skip(1).find_map(|line| {
            let (field, value) = line.split_once(": ")?;
            field.eq_ignore_ascii_case(name).then_some(value)
        })
    }

    /// The status, the head so far (the status line and the fields, for the
    /// connection to finish), and the body.
    pub(crate) fn into_parts(self) -> (StatusCode, Vec<u8>, Body) {
        (self.status, self.head.0, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_set_together_replace_and_remove_in_one_pass() {
        let mut response = Response::new(StatusCode::OK)
            .with_header("ETag", "\"1\"")
            .with_header("Server", "oneloop")
            .with_header("content-type", "text/plain")
            .with_header("X-Frame", "DENY");
        response.set_headers(&[
            ("Content-Type", "text/html"),
            ("Server", ""),
            ("Cache-Control", "no-cache"),
        ]);
        let (_, head, _) = response.into_parts();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\nETag: \"1\"\r\nX-Frame: DENY\r\n\
             Content-Type: text/html\r\nCache-Control: no-cache\r\n"
        );
    }

    #[test]
    fn a_field_set_replaces_every_field_of_its_name_and_only_those() {
        let mut response = Response::new(StatusCode::OK)
            .with_header("Cache-Control", "no-store")
            .with_header("Content-Type", "text/html")
            .with_header("cache-control", "private")
            .with_header("Cache-Controlled", "kept");
        response.set_header("Cache-Control", "public, max-age=60");
        let (_, head, _) = response.clone().into_parts();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Controlled: kept\r\n\
             Cache-Control: public, max-age=60\r\n"
        );
        let before = response.clone().into_parts().1;
        response.set_headers(&[("X-Absent", "")]);
        assert_eq!(
            response.clone().into_parts().1,
            before,
            "nothing of another name goes"
        );
        response.set_headers(&[("content-type", "")]);
        assert_eq!(response.header("Content-Type"), None);
        assert_eq!(response.header("Cache-Control"), Some("public, max-age=60"));
    }

    #[test]
    fn headers_are_kept_in_order_and_found_by_name() {
        let r = Response::new(StatusCode::OK)
            .with_header("Content-Type", "text/plain")
            .with_header("Vary", "Accept-Encoding");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("VARY"), Some("Accept-Encoding"));
        assert_eq!(r.header("etag"), None);
        let (_, head, _) = r.into_parts();
        assert_eq!(
            head,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nVary: Accept-Encoding\r\n"
        );
        let (_, head, _) = Response::new(StatusCode::NOT_FOUND).into_parts();
        assert_eq!(head, b"HTTP/1.1 404 Not Found\r\n");
    }

    #[test]
    fn body_length_sums_its_chunks() {
        let mut body = Body::from(b"abc".to_vec());
        body.push(Chunk::Shared {
            data: Arc::from(&b"xde"[..]),
            range: 1..3,
        });
        body.push(Chunk::Bytes(Vec::new()));
        assert_eq!(body.len(), 5);
        assert_eq!(body.chunks().len(), 2);
    }

    #[test]
    fn error_bodies_name_the_status() {
        let r = Response::error(StatusCode::NOT_FOUND);
        match r.body().chunks() {
            [Chunk::Bytes(b)] => assert_eq!(b, b"404 Not Found\n"),
            other => panic!("unexpected body {other:?}"),
        }
    }
}
