//! Percent-encoding (RFC 3986 section 2.1): the one place where the application
//! turns a URL path segment into bytes, or bytes into a segment for a link or a
//! `Location`.
//!
//! Decoding is strict: `%` must be followed by two hex digits. The core already
//! refuses a request whose path breaks that rule (400), so in the server this
//! never fails; it stays strict so that no caller can be handed a guess.

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC};

/// A `%` not followed by two hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MalformedEscape;

/// Bytes left as they are in a path segment we write: RFC 3986 unreserved.
const SEGMENT_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Bytes escaped when a path or query received raw goes back out in a header:
/// anything that is not visible ASCII (raw UTF-8, say), and nothing else, so it
/// means what the client sent.
const IN_HEADER: &AsciiSet = &CONTROLS.add(b' ');

/// Decodes `%XX` escapes; every other byte (raw UTF-8 included) stands for itself.
pub(super) fn decode(text: &str) -> Result<Vec<u8>, MalformedEscape> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'%' {
            out.push(byte);
            rest = tail;
            continue;
        }
        let (high, low) = match tail {
            [high, low, ..] => (hex_value(*high), hex_value(*low)),
            _ => (None, None),
        };
        let (Some(high), Some(low)) = (high, low) else {
            return Err(MalformedEscape);
        };
        out.push(high << 4 | low);
        rest = tail.get(2..).unwrap_or_default();
    }
    Ok(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// Percent-encodes one path segment (a file name for a link, a directory for a
/// redirect): only unreserved characters stay as they are.
pub(super) fn encode_segment(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, SEGMENT_SAFE).collect()
}

/// A path or query as received, made fit for a response header (a `Location`):
/// raw bytes outside visible ASCII are escaped, everything else is kept as the
/// client wrote it.
pub(super) fn for_header(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, IN_HEADER).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_raw_utf8() {
        assert_eq!(decode("a%20b"), Ok(b"a b".to_vec()));
        assert_eq!(decode("caf%C3%A9"), Ok("café".as_bytes().to_vec()));
        assert_eq!(decode("café"), Ok("café".as_bytes().to_vec()));
        assert_eq!(decode("%2e%2E"), Ok(b"..".to_vec()));
        assert_eq!(decode(""), Ok(Vec::new()));
    }

    #[test]
    fn refuses_malformed_escapes() {
        for bad in ["100%", "%", "%4", "%zz", "%g0", "a%\u{e9}9", "%%41"] {
            assert_eq!(decode(bad), Err(MalformedEscape), "{bad}");
        }
    }

    #[test]
    fn encodes_segments_and_queries() {
        assert_eq!(encode_segment("a b/é".as_bytes()), "a%20b%2F%C3%A9");
        assert_eq!(encode_segment(b"safe-._~"), "safe-._~");
        assert_eq!(for_header("a=1&b=é"), "a=1&b=%C3%A9");
        assert_eq!(for_header("x=%20"), "x=%20", "escapes stay as sent");
    }
}
