//! Content negotiation on `Accept-Encoding` (RFC 9110 section 12.5.3), and gzip.

use std::io::Write;
use std::ops::BitOr;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::http::RequestHead;
use crate::http::{list_elements, weighted};

/// A content coding oneloop can send a representation in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Coding {
    Gzip,
    Brotli,
}

impl Coding {
    /// The coding's name in `Content-Encoding` and `Accept-Encoding`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        }
    }

    /// What a precompressed sidecar adds to its original's name.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Coding::Gzip => ".gz",
            Coding::Brotli => ".br",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Coding::Gzip => 1,
            Coding::Brotli => 1 << 1,
        }
    }
}

/// A set of codings: those a client accepts (like hyper's `Wants`, named bits
/// rather than magic numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Codings(u8);

impl Codings {
    /// No coding but identity.
    pub(super) const NONE: Codings = Codings(0);

    pub(super) fn contains(self, coding: Coding) -> bool {
        self.0 & coding.bit() != 0
    }

    /// The codings (of those oneloop sends) that `request` accepts, in one
    /// pass over its Accept-Encoding.
    pub(super) fn accepted_by(request: &RequestHead) -> Codings {
        let [gzip, brotli] = accepts_each(request, [Coding::Gzip.name(), Coding::Brotli.name()]);
        let of = |coding: Coding, accepted: bool| {
            if accepted {
                coding.into()
            } else {
                Codings::NONE
            }
        };
        of(Coding::Gzip, gzip) | of(Coding::Brotli, brotli)
    }
}

impl From<Coding> for Codings {
    fn from(coding: Coding) -> Codings {
        Codings(coding.bit())
    }
}

impl BitOr for Codings {
    type Output = Codings;

    fn bitor(self, other: Codings) -> Codings {
        Codings(self.0 | other.0)
    }
}

/// Whether the client accepts `coding` (`gzip`, `br`): listed with a non-zero
/// weight, or covered by a non-zero `*` without being refused by name.
///
/// A request with no `Accept-Encoding` gets the identity encoding: RFC 9110 would
/// allow any coding, but no client that omits the header expects one.
pub(super) fn accepts(request: &RequestHead, coding: &str) -> bool {
    let [accepted] = accepts_each(request, [coding]);
    accepted
}

/// [`accepts`] for several codings, in one pass over the header.
pub(super) fn accepts_each<const N: usize>(request: &RequestHead, codings: [&str; N]) -> [bool; N] {
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
pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
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
    use crate::http::test_head as head;
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
    fn codings_are_a_set_read_in_one_pass() {
        let accepted = Codings::accepted_by(&with("br, gzip;q=0"));
        assert!(accepted.contains(Coding::Brotli));
        assert!(!accepted.contains(Coding::Gzip));
        assert_eq!(Codings::accepted_by(&with("identity")), Codings::NONE);
        let both = Codings::accepted_by(&with("*"));
        assert_eq!(both, Codings::from(Coding::Gzip) | Coding::Brotli.into());
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
