//! Byte ranges (RFC 9110 section 14): parsing `Range`, choosing what to send, and
//! the `multipart/byteranges` body for several ranges.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::http::{Body, Chunk};

/// Most ranges one request may ask for; more are answered with the whole file.
pub(crate) const MAX_RANGES: usize = 16;

/// An inclusive byte range, as `Content-Range` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub(crate) fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// `bytes 0-99/1234`
    pub(crate) fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.first, self.last)
    }
}

/// What to send for a `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// No Range, an invalid one, or one we decline: 200 with everything.
    Full,
    /// 206 with these ranges, in the order asked.
    Partial(Vec<ByteRange>),
    /// 416: none of the ranges overlaps the representation.
    Unsatisfiable,
}

/// Decides what to send for `header` on a representation of `len` bytes.
///
/// Invalid syntax is ignored (RFC 9110 section 14.2 allows it), and so are
/// requests that would make us send more than we hold: too many ranges, or
/// overlapping ones (the "overlapping-range amplification" of CVE-2011-3192).
pub(crate) fn answer(header: Option<&[u8]>, len: u64) -> RangeAnswer {
    let Some(header) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return RangeAnswer::Full;
    };
    let header = header.trim();
    let Some(specs) = header
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .and_then(|_| header.get(6..))
    else {
        return RangeAnswer::Full;
    };

    let mut ranges = Vec::new();
    for spec in specs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match parse_spec(spec, len) {
            Spec::Invalid => return RangeAnswer::Full,
            Spec::Unsatisfiable => {}
            Spec::Range(range) => ranges.push(range),
        }
        if ranges.len() > MAX_RANGES {
            return RangeAnswer::Full;
        }
    }
    if ranges.is_empty() {
        // `bytes=` with no specs at all is invalid, not unsatisfiable.
        return if specs.trim().is_empty() {
            RangeAnswer::Full
        } else {
            RangeAnswer::Unsatisfiable
        };
    }
    if overlapping(&ranges) {
        return RangeAnswer::Full;
    }
    RangeAnswer::Partial(ranges)
}

enum Spec {
    Invalid,
    Unsatisfiable,
    Range(ByteRange),
}

/// `first-last`, `first-`, or `-suffix`.
fn parse_spec(spec: &str, len: u64) -> Spec {
    let Some((first, last)) = spec.split_once('-') else {
        return Spec::Invalid;
    };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => Spec::Invalid,
            Some(0) => Spec::Unsatisfiable,
            Some(_) if len == 0 => Spec::Unsatisfiable,
            Some(n) => Spec::Range(ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            }),
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return Spec::Invalid;
            };
            let last = match last {
                "" => None,
                text => match number(text) {
                    Some(n) if n >= first => Some(n),
                    _ => return Spec::Invalid,
                },
            };
            if first >= len {
                return Spec::Unsatisfiable;
            }
            Spec::Range(ByteRange {
                first,
                last: last.map_or(len - 1, |l| l.min(len - 1)),
            })
        }
    }
}

fn overlapping(ranges: &[ByteRange]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.first);
    sorted.windows(2).any(|pair| pair[1].first <= pair[0].last)
}

/// A `multipart/byteranges` body: each range with its own small head, as file
/// segments so the data itself still goes out through sendfile.
pub(super) struct Multipart {
    pub content_type: String,
    pub body: Body,
}

/// `slice` gives the chunk holding one range of the representation.
pub(super) fn multipart(
    ranges: &[ByteRange],
    total: u64,
    part_type: &str,
    slice: impl Fn(ByteRange) -> Chunk,
) -> Multipart {
    let boundary = boundary();
    let mut body = Body::empty();
    for range in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(total)
        );
        body.push(Chunk::Bytes(head.into_bytes()));
        body.push(slice(*range));
    }
    body.push(Chunk::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
    Multipart {
        content_type: format!("multipart/byteranges; boundary={boundary}"),
        body,
    }
}

/// A boundary unlikely to occur in any file: a random number drawn once per
/// process (std's per-process hasher keys), and a counter.
fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| RandomState::new().build_hasher().finish());
    format!(
        "oneloop-{:016x}{:08x}",
        seed,
        COUNTER.fetch_add(1, Ordering::Relaxed) as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    fn ask(header: &str, len: u64) -> RangeAnswer {
        answer(Some(header.as_bytes()), len)
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(
            ask("bytes=0-99", 1000),
            RangeAnswer::Partial(vec![r(0, 99)])
        );
        assert_eq!(
            ask("bytes=900-", 1000),
            RangeAnswer::Partial(vec![r(900, 999)])
        );
        assert_eq!(
            ask("bytes=-100", 1000),
            RangeAnswer::Partial(vec![r(900, 999)])
        );
        assert_eq!(
            ask("bytes=-5000", 1000),
            RangeAnswer::Partial(vec![r(0, 999)])
        );
        assert_eq!(
            ask("bytes=990-5000", 1000),
            RangeAnswer::Partial(vec![r(990, 999)])
        );
        assert_eq!(
            ask("Bytes = 0-0", 1000),
            RangeAnswer::Full,
            "no spaces in the unit"
        );
        assert_eq!(ask("BYTES=0-0", 1000), RangeAnswer::Partial(vec![r(0, 0)]));
    }

    #[test]
    fn several_ranges_keep_their_order() {
        assert_eq!(
            ask("bytes=500-599, 0-99,-10", 1000),
            RangeAnswer::Partial(vec![r(500, 599), r(0, 99), r(990, 999)])
        );
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(ask("bytes=1000-", 1000), RangeAnswer::Unsatisfiable);
        assert_eq!(ask("bytes=-0", 1000), RangeAnswer::Unsatisfiable);
        assert_eq!(ask("bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(
            ask("bytes=2000-3000, 5000-", 1000),
            RangeAnswer::Unsatisfiable
        );
        // An unsatisfiable spec next to a satisfiable one is just dropped.
        assert_eq!(
            ask("bytes=2000-3000, 0-1", 1000),
            RangeAnswer::Partial(vec![r(0, 1)])
        );
    }

    #[test]
    fn invalid_syntax_is_ignored() {
        for header in [
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1",
            "lines=0-1",
            "bytes=",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=0-1,x",
        ] {
            assert_eq!(ask(header, 1000), RangeAnswer::Full, "{header}");
        }
        assert_eq!(answer(None, 1000), RangeAnswer::Full);
        assert_eq!(ask("bytés=0-1", 1000), RangeAnswer::Full);
        assert_eq!(ask("bytes=0-\u{e9}", 1000), RangeAnswer::Full);
        assert_eq!(answer(Some(b"bytes=\xff-1"), 1000), RangeAnswer::Full);
    }

    #[test]
    fn amplification_is_refused() {
        assert_eq!(ask("bytes=0-499,100-599", 1000), RangeAnswer::Full);
        assert_eq!(ask("bytes=0-,0-,0-", 1000), RangeAnswer::Full);
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert_eq!(
            ask(&format!("bytes={}", many.join(",")), 1000),
            RangeAnswer::Full
        );
        let allowed: Vec<String> = (0..MAX_RANGES)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        assert!(
            matches!(ask(&format!("bytes={}", allowed.join(",")), 1000), RangeAnswer::Partial(v) if v.len() == MAX_RANGES)
        );
    }

    #[test]
    fn multipart_bodies_frame_each_range() {
        let file = std::sync::Arc::new(std::fs::File::open("Cargo.toml").unwrap());
        let parts = multipart(&[r(0, 9), r(20, 24)], 100, "text/plain", |range| {
            Chunk::File {
                file: file.clone(),
                offset: range.first,
                len: range.len(),
            }
        });
        let boundary = parts
            .content_type
            .split("boundary=")
            .nth(1)
            .unwrap()
            .to_string();
        let chunks = parts.body.chunks();
        assert_eq!(chunks.len(), 5);
        match &chunks[0] {
            Chunk::Bytes(b) => assert_eq!(
                String::from_utf8_lossy(b),
                format!(
                    "\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/100\r\n\r\n"
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            chunks[3],
            Chunk::File {
                offset: 20,
                len: 5,
                ..
            }
        ));
        match &chunks[4] {
            Chunk::Bytes(b) => assert_eq!(
                String::from_utf8_lossy(b),
                format!("\r\n--{boundary}--\r\n")
            ),
            other => panic!("{other:?}"),
        }
    }
}
