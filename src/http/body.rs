//! Decoding a request body, incrementally, from whatever bytes have arrived.
//!
//! A Content-Length body is a countdown. A chunked body (RFC 9112 section 7.1) is a
//! small state machine, byte by byte through the framing and in bulk through the
//! data, so that it works the same whatever way the input is split. It is strict
//! where `httparse::parse_chunk_size` is lenient: a size needs at least one hex
//! digit, sizes may not overflow, every line ends in CRLF, and a chunk extension
//! follows RFC 9112 section 7.1.1 to the byte (a name, then perhaps `=` and a
//! token or a quoted string), although its meaning is ignored.
//!
//! Why the grammar of something ignored matters: a proxy in front of us that
//! reads `5;a="x\r\n...` differently (one that skips to the first LF, one that
//! honours the quotes) sees a different body than we do, and the difference is
//! a place to hide a second request (chunk-extension smuggling). Refusing what
//! the grammar does not allow leaves no reading but the one.

use super::error::ProtocolError;
use super::framing::BodyFraming;

/// Longest chunk extension (ignored, but bounded so it cannot stream forever).
const MAX_CHUNK_EXTENSION: usize = 1024;
/// Most bytes of trailer fields (parsed, then discarded).
const MAX_TRAILERS: usize = 8 * 1024;

/// What one call to [`BodyDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// `consumed` input bytes were used; `data` (a range of the input) is body content.
    Data {
        consumed: usize,
        data: std::ops::Range<usize>,
    },
    /// The body is complete after `consumed` bytes.
    Done { consumed: usize },
    /// All `consumed` bytes were framing; more input is needed.
    NeedMore { consumed: usize },
}

#[derive(Debug)]
pub(super) struct BodyDecoder {
    kind: Kind,
    /// Body bytes so far, checked against `limit` (chunked bodies declare no length).
    received: u64,
    limit: u64,
}

#[derive(Debug)]
enum Kind {
    Length { remaining: u64 },
    Chunked(Chunked),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Reading hex digits of a chunk size; `digits` counts them.
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size, before `;`.
    SizeSpace {
        size: u64,
    },
    /// Inside `;name=value`, checked and ignored; `length` counts its bytes.
    Extension {
        size: u64,
        length: usize,
        at: Extension,
    },
    /// Saw CR after the size line; LF must follow.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart {
        total: usize,
    },
    /// Inside a trailer field name; `length` counts its bytes.
    TrailerName {
        total: usize,
        length: usize,
    },
    TrailerValue {
        total: usize,
    },
    /// Saw CR ending a trailer field; LF must follow.
    TrailerLf {
        total: usize,
    },
    /// Saw CR of the final empty line; LF must follow.
    FinalLf,
    Done,
}

/// Where in a chunk extension the decoder is (RFC 9112 section 7.1.1):
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extension {
    /// After `;`: whitespace, then the first byte of a name.
    BeforeName,
    /// In the name (a token).
    Name,
    /// Whitespace after the name: `=` or `;` must follow.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    BeforeValue,
    /// In a token value.
    Token,
    /// Inside the quotes of a quoted-string value.
    Quoted,
    /// After a backslash inside the quotes.
    QuotedPair,
    /// After the value: the line ends, or whitespace then `;` follows.
    AfterValue,
    /// Whitespace after the value: `;` must follow.
    SpaceAfterValue,
}

impl BodyDecoder {
    /// A decoder for `framing`, or `None` when there is no body.
    pub(super) fn new(framing: BodyFraming, limit: u64) -> Option<BodyDecoder> {
        let kind = match framing {
            BodyFraming::None => return None,
            BodyFraming::Length(n) => Kind::Length { remaining: n },
            BodyFraming::Chunked => Kind::Chunked(Chunked::Size { size: 0, digits: 0 }),
        };
        Some(BodyDecoder {
            kind,
            received: 0,
            limit,
        })
    }

    /// Decodes from the start of `input`: at most one run of content per call.
    pub(super) fn decode(&mut self, input: &[u8]) -> Result<Decoded, ProtocolError> {
        match &mut self.kind {
            Kind::Length { remaining } => {
                if *remaining == 0 {
                    return Ok(Decoded::Done { consumed: 0 });
                }
                if input.is_empty() {
                    return Ok(Decoded::NeedMore { consumed: 0 });
                }
                let take = clamp(*remaining, input.len());
                *remaining -= take as u64;
                self.received += take as u64;
                Ok(Decoded::Data {
                    consumed: take,
                    data: 0..take,
                })
            }
            Kind::Chunked(state) => {
                let decoded = decode_chunked(state, input)?;
                if let Decoded::Data { data, .. } = &decoded {
                    self.received += data.len() as u64;
                    if self.received > self.limit {
                        return Err(ProtocolError::BodyTooLarge);
                    }
                }
                Ok(decoded)
            }
        }
    }
}

/// The state after the `;` that opens a chunk extension.
fn extension(size: u64) -> Chunked {
    Chunked::Extension {
        size,
        length: 0,
        at: Extension::BeforeName,
    }
}

/// One byte of a chunk extension: where it leaves the extension, or `None`
/// when it is the CR that ends the size line. Everything the grammar does not
/// allow is refused: no name (`5;`), a quote left open (`5;a="x`), a value
/// missing after `=`, stray bytes, whitespace before the line's end.
fn next_in_extension(at: Extension, b: u8) -> Result<Option<Extension>, ProtocolError> {
    use Extension::*;
    let is_space = b == b' ' || b == b'\t';
    let next = match at {
        BeforeName if is_space => BeforeName,
        BeforeName if is_token(b) => Name,
        BeforeName => return Err(malformed("chunk extension without a name")),
        Name | AfterName | Token | AfterValue | SpaceAfterValue if b == b';' => BeforeName,
        Name | Token | AfterValue if b == b'\r' => return Ok(None),
        Name if is_token(b) => Name,
        Name | AfterName if is_space => AfterName,
        Name | AfterName if b == b'=' => BeforeValue,
        BeforeValue if is_space => BeforeValue,
        BeforeValue if b == b'"' => Quoted,
        BeforeValue if is_token(b) => Token,
        BeforeValue => return Err(malformed("chunk extension without a value after =")),
        Token if is_token(b) => Token,
        Token | AfterValue | SpaceAfterValue if is_space => SpaceAfterValue,
        Quoted if b == b'"' => AfterValue,
        Quoted if b == b'\\' => QuotedPair,
        Quoted if is_quoted_text(b) => Quoted,
        Quoted => return Err(malformed("unterminated quoted chunk extension")),
        QuotedPair if is_field_value(b) => Quoted,
        QuotedPair => return Err(malformed("invalid escape in a chunk extension")),
        _ => return Err(malformed("invalid chunk extension")),
    };
    Ok(Some(next))
}

/// `qdtext` (RFC 9110 section 5.6.4): what may stand unescaped between quotes.
fn is_quoted_text(b: u8) -> bool {
    b != b'"' && b != b'\\' && is_field_value(b)
}

fn clamp(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

fn malformed(detail: &'static str) -> ProtocolError {
    ProtocolError::Malformed(detail)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_field_value(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Runs the chunked state machine over `input` until it has content to hand out,
/// finishes, or runs out of bytes.
fn decode_chunked(state: &mut Chunked, input: &[u8]) -> Result<Decoded, ProtocolError> {
    let mut i = 0;
    loop {
        if let Chunked::Data { remaining } = state {
            if i == input.len() {
                return Ok(Decoded::NeedMore { consumed: i });
            }
            let take = clamp(*remaining, input.len() - i);
            *remaining -= take as u64;
            if *remaining == 0 {
                *state = Chunked::DataCr;
            }
            return Ok(Decoded::Data {
                consumed: i + take,
                data: i..i + take,
            });
        }
        if *state == Chunked::Done {
            return Ok(Decoded::Done { consumed: i });
        }
        let Some(&b) = input.get(i) else {
            return Ok(Decoded::NeedMore { consumed: i });
        };
        i += 1;
        *state = match *state {
            Chunked::Size { size, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or(ProtocolError::BodyTooLarge)?;
                    Chunked::Size {
                        size,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(malformed("chunk size without digits")),
                b'\r' => Chunked::SizeLf { size },
                b';' => extension(size),
                b' ' | b'\t' => Chunked::SizeSpace { size },
                _ => return Err(malformed("invalid chunk size")),
            },
            Chunked::SizeSpace { size } => match b {
                b' ' | b'\t' => Chunked::SizeSpace { size },
                b';' => extension(size),
                _ => return Err(malformed("invalid chunk size line")),
            },
            Chunked::Extension { size, length, at } => {
                if length >= MAX_CHUNK_EXTENSION {
                    return Err(malformed("chunk extension too long"));
                }
                match next_in_extension(at, b)? {
                    Some(at) => Chunked::Extension {
                        size,
                        length: length + 1,
                        at,
                    },
                    None => Chunked::SizeLf { size },
                }
            }
            Chunked::SizeLf { size } => match b {
                b'\n' if size == 0 => Chunked::TrailerStart { total: 0 },
                b'\n' => Chunked::Data { remaining: size },
                _ => return Err(malformed("chunk size line without CRLF")),
            },
            Chunked::DataCr => match b {
                b'\r' => Chunked::DataLf,
                _ => return Err(malformed("chunk data not followed by CRLF")),
            },
            Chunked::DataLf => match b {
                b'\n' => Chunked::Size { size: 0, digits: 0 },
                _ => return Err(malformed("chunk data not followed by CRLF")),
            },
            Chunked::TrailerStart { total } => match b {
                b'\r' => Chunked::FinalLf,
                _ if is_token(b) => Chunked::TrailerName {
                    total: total + 1,
                    length: 1,
                },
                _ => return Err(malformed("invalid trailer field")),
            },
            Chunked::TrailerName { total, length } => match b {
                b':' => Chunked::TrailerValue { total: total + 1 },
                _ if is_token(b) => Chunked::TrailerName {
                    total: total + 1,
                    length: length + 1,
                },
                _ => return Err(malformed("invalid trailer field name")),
            },
            Chunked::TrailerValue { total } => match b {
                b'\r' => Chunked::TrailerLf { total: total + 1 },
                _ if is_field_value(b) => Chunked::TrailerValue { total: total + 1 },
                _ => return Err(malformed("invalid trailer field value")),
            },
            Chunked::TrailerLf { total } => match b {
                b'\n' => Chunked::TrailerStart { total: total + 1 },
                _ => return Err(malformed("trailer field without CRLF")),
            },
            Chunked::FinalLf => match b {
                b'\n' => Chunked::Done,
                _ => return Err(malformed("chunked body without final CRLF")),
            },
            Chunked::Data { .. } | Chunked::Done => unreachable!("handled above"),
        };
        if let Chunked::TrailerStart { total }
        | Chunked::TrailerName { total, .. }
        | Chunked::TrailerValue { total }
        | Chunked::TrailerLf { total } = *state
            && total > MAX_TRAILERS
        {
            return Err(ProtocolError::HeadTooLarge);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes the way the connection does (keeping
    /// unconsumed bytes), returning the content and whether the body completed.
    fn decode_in_steps(
        framing: BodyFraming,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, usize), ProtocolError> {
        let mut decoder = BodyDecoder::new(framing, 1 << 20).expect("a body");
        let mut pending: Vec<u8> = Vec::new();
        let mut content = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&pending)? {
                Decoded::Data { consumed, data } => {
                    content.extend_from_slice(&pending[data]);
                    pending.drain(..consumed);
                }
                Decoded::Done { consumed } => {
                    pending.drain(..consumed);
                    return Ok((content, fed - pending.len()));
                }
                Decoded::NeedMore { consumed } => {
                    pending.drain(..consumed);
                    if fed == input.len() {
                        return Err(ProtocolError::Truncated);
                    }
                    let end = (fed + step).min(input.len());
                    pending.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn content_length_counts_down() {
        for step in [1, 2, 5, 100] {
            let (content, used) =
                decode_in_steps(BodyFraming::Length(5), b"hello NEXT", step).unwrap();
            assert_eq!(content, b"hello");
            assert_eq!(used, 5, "step {step}");
        }
    }

    #[test]
    fn chunked_in_any_split() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT";
        for step in 1..body.len() {
            let (content, used) = decode_in_steps(BodyFraming::Chunked, body, step).unwrap();
            assert_eq!(content, b"hello world", "step {step}");
            assert_eq!(used, body.len() - 4, "step {step}");
        }
    }

    #[test]
    fn chunk_sizes_accept_case_leading_zeros_and_whitespace_before_extensions() {
        let body = b"0000A \t;x\r\n0123456789\r\n0\r\n\r\n";
        let (content, _) = decode_in_steps(BodyFraming::Chunked, body, 64).unwrap();
        assert_eq!(content, b"0123456789");
    }

    fn chunked_error(body: &[u8]) -> ProtocolError {
        decode_in_steps(BodyFraming::Chunked, body, 64).unwrap_err()
    }

    #[test]
    fn refuses_loose_chunk_framing() {
        for body in [
            &b"\r\nhello\r\n0\r\n\r\n"[..], // empty size line
            b";ext\r\n",                    // extension without a size
            b"5\nhello\r\n0\r\n\r\n",       // bare LF after size
            b"5\r\nhello\n0\r\n\r\n",       // bare LF after data
            b"5\r\nhelloX\r\n0\r\n\r\n",    // data longer than its size
            b"5 \r\nhello\r\n0\r\n\r\n",    // whitespace without an extension
            b"0x5\r\nhello\r\n0\r\n\r\n",   // not hex
            b"0\r\nBad Trailer: x\r\n\r\n", // space in a trailer name
            b"0\r\nA: b\n\r\n",             // bare LF in trailers
            b"0\r\n\n",                     // bare LF final line
            b"-1\r\n",
        ] {
            let error = chunked_error(body);
            assert!(
                matches!(error, ProtocolError::Malformed(_)),
                "{body:?}: {error:?}"
            );
        }
    }

    #[test]
    fn chunk_extensions_that_the_grammar_allows_are_ignored() {
        for extension in [
            &b";a"[..],
            b";a=b",
            b";a=\"\"",
            b";a=\"x y;z\"",
            b";a=\"quoted \\\" and \\\\\"",
            b";a;b=c;d=\"e\"",
            b" ; a = b ;c",
            b"\t;a\t=\t\"v\"\t;b",
            b";a=\"caf\xc3\xa9\"", // obs-text is allowed between quotes
        ] {
            let body = [b"5".as_slice(), extension, b"\r\nhello\r\n0\r\n\r\n"].concat();
            for step in [1, 3, 64] {
                let decoded = decode_in_steps(BodyFraming::Chunked, &body, step);
                assert_eq!(
                    decoded.map(|(content, _)| content),
                    Ok(b"hello".to_vec()),
                    "{:?} in steps of {step}",
                    String::from_utf8_lossy(extension)
                );
            }
        }
    }

    #[test]
    fn chunk_extensions_outside_the_grammar_are_refused() {
        for extension in [
            &b";"[..],         // no name
            b"; ",             // no name, whitespace
            b";;a",            // an empty extension
            b";=b",            // a value without a name
            b";a=",            // a name and `=`, no value
            b";a= ",           // likewise, with whitespace
            b";a=\"abc",       // a quote left open to the end of the line
            b";a=\"abc\\\"",   // the closing quote escaped
            b";a=\"ab\"c",     // bytes after the closing quote
            b";a=b c",         // two tokens
            b";a b",           // a name, whitespace, a token
            b";a ",            // whitespace before the end of the line
            b";a=b ",          // likewise after a value
            b";a=\"x\" ",      // likewise after a quoted value
            b";a@b",           // not a token
            b";a=b@",          // not a token
            b";a=\"\x01\"",    // a control byte in quotes
            b";a=\"\\\x01\"",  // an escaped control byte
            b";a=\"x\ny\"",    // LF inside quotes
            b";a\n",           // bare LF
            b";a=caf\xc3\xa9", // a token is ASCII
        ] {
            let body = [b"5".as_slice(), extension, b"\r\nhello\r\n0\r\n\r\n"].concat();
            for step in [1, 64] {
                let error = decode_in_steps(BodyFraming::Chunked, &body, step).unwrap_err();
                assert!(
                    matches!(error, ProtocolError::Malformed(_)),
                    "{:?} in steps of {step}: {error:?}",
                    String::from_utf8_lossy(extension)
                );
            }
        }
    }

    #[test]
    fn chunk_size_overflow_is_refused() {
        assert_eq!(
            chunked_error(b"10000000000000000\r\n"),
            ProtocolError::BodyTooLarge
        );
        // Leading zeros are not an overflow: the value is what counts, not the digits.
        let padded = b"00000000000000000001\r\nx\r\n0\r\n\r\n";
        let (content, _) = decode_in_steps(BodyFraming::Chunked, padded, 7).unwrap();
        assert_eq!(content, b"x");
    }

    #[test]
    fn chunked_bodies_over_the_limit_are_refused_midstream() {
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, 4).unwrap();
        assert!(matches!(
            decoder.decode(b"3\r\nabc\r\n"),
            Ok(Decoded::Data { .. })
        ));
        assert!(matches!(
            decoder.decode(b"\r\n"),
            Ok(Decoded::NeedMore { .. })
        ));
        assert_eq!(
            decoder.decode(b"2\r\nde\r\n"),
            Err(ProtocolError::BodyTooLarge)
        );
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let long_ext = [b"1;".as_slice(), &[b'x'; MAX_CHUNK_EXTENSION + 1]].concat();
        assert!(matches!(
            chunked_error(&long_ext),
            ProtocolError::Malformed(_)
        ));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 64 {
            trailers.extend_from_slice(b"X-A: 0123456789\r\n");
        }
        assert_eq!(chunked_error(&trailers), ProtocolError::HeadTooLarge);
    }
}
