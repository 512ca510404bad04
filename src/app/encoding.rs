//! Content negotiation on `Accept-Encoding` (RFC 9110 section 12.5.3), and gzip.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::http::RequestHead;
use crate::http::tokens::{list_elements, weighted};

/// Whether the client accepts `coding` (`gzip`, `br`): listed with a non-zero
/// weight, or covered by a non-zero `*` without being refused by name.
///
/// A request with no `Accept-Encoding` gets the identity encoding: RFC 9110 would
/// allow any coding, but no client that omits the header expects one.
pub fn accepts(request: &RequestHead, coding: &str) -> bool {
    let [accepted] = accepts_each(request, [coding]);
    accepted
}

/// [`accepts`] for several codings, in one pass over the header.
pub fn accepts_each<const N: usize>(request: &RequestHead, codings: [&str; N]) -> [bool; N] {
    let mut named = [None; N];
    let mut wildcard = None;
    for element in list_elements(request.headers("accept-encoding")) {
        let (item, quality) = weighted(element);
        if item == b"*" {
            wildcard = Some(quality);
            continue;
        }
        for (coding, named) in codings.iter().zip(named.iter_mut()) {
            let is_coding = item.eq_ignore_ascii_case(coding.as_bytes())
                // RFC 9110 section 8.4.1.3: x-gzip is gzip.
                || (*coding == "gzip" && item.eq_ignore_ascii_case(b"x-gzip"));
            if is_coding {
                *named = Some(named.unwrap_or(0).max(quality));
            }
        }
    }
    named.map(|named| named.or(wildcard).is_some_and(|quality| quality > 0))
}

/// Compresses `data` as a gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 32),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::tests::head;
    use std::io::Read;

    fn with(accept: &str) -> RequestHead {
        head(&format!(
            "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {accept}\r\n\r\n"
        ))
    }

    #[test]
    fn gzip_is_accepted_when_listed() {
        assert!(accepts(&with("gzip"), "gzip"));
        assert!(accepts(&with("deflate, GZIP ,br"), "gzip"));
        assert!(accepts(&with("x-gzip"), "gzip"));
        assert!(accepts(&with("gzip;q=0.1"), "gzip"));
    }

    #[test]
    fn gzip_is_refused_when_absent_or_weighted_zero() {
        assert!(!accepts(&with("invalid-encoding"), "gzip"));
        assert!(!accepts(&with("gzip;q=0"), "gzip"));
        assert!(!accepts(&with("gzip;q=0, *"), "gzip"));
        assert!(!accepts(&with("*;q=0"), "gzip"));
        assert!(!accepts(&head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "gzip"));
    }

    #[test]
    fn the_wildcard_covers_unnamed_codings() {
        assert!(accepts(&with("*"), "gzip"));
        assert!(accepts(&with("br;q=0, *"), "gzip"));
        assert!(!accepts(&with("br;q=0, *"), "br"));
    }

    #[test]
    fn one_pass_answers_for_each_coding() {
        for (accept, expected) in [
            ("gzip", [true, false]),
            ("br;q=0, *", [true, false]),
            ("x-gzip, br", [true, true]),
            ("br, gzip;q=0", [false, true]),
            ("*;q=0", [false, false]),
            ("identity", [false, false]),
        ] {
            assert_eq!(
                accepts_each(&with(accept), ["gzip", "br"]),
                expected,
                "{accept}"
            );
        }
    }

    #[test]
    fn gzip_round_trips() {
        let compressed = gzip(b"abcabcabc");
        assert_eq!(&compressed[..2], &[0x1f, 0x8b]);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "abcabcabc");
    }
}
