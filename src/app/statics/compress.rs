//! Text files compressed on the fly, once, as they enter the cache.
//!
//! nginx (`gzip on`), Caddy (`encode`) and lighttpd (`mod_deflate`) gzip text
//! for the clients that accept it; a site should not need a `.gz` beside every
//! page for that. Here a file is compressed when it is read into the cache, so
//! a hit on it costs what any hit costs, and the loop pays for compressing a
//! file once per change of it, never per request. What is compressed:
//!
//! - files small enough to be held in memory (`--cache-file-bytes`, 64 KiB:
//!   3 ms of gzip on the 2-core machine this was written on, once per change
//!   of the file); larger ones leave by sendfile as they are, so give those a
//!   `.gz` or `.br` sidecar;
//! - of a type that compresses: text, scripts, JSON, XML, SVG, WebAssembly,
//!   TrueType and OpenType fonts (images, video and archives are compressed
//!   already);
//! - from [`MIN_LEN`] bytes, and only when the result is smaller.
//!
//! A representation made here has a weak entity tag and is always sent whole.
//! Its bytes are whatever this build's compressor makes, so it cannot promise
//! the byte-for-byte sameness that a strong tag, a Range or an If-Match rely
//! on; nginx weakens its tags for gzip the same way.

use crate::app::encoding::gzip;

/// Below this, gzip's 18 bytes of header and trailer eat most of the gain
/// (Caddy's `encode` starts at the same length).
pub(super) const MIN_LEN: u64 = 512;

/// Whether a file of this type and length should be compressed for clients
/// that accept gzip. `held_in_memory` says whether the cache would read it.
pub(super) fn worth_trying(content_type: &str, len: u64, held_in_memory: bool) -> bool {
    held_in_memory && len >= MIN_LEN && compresses(content_type)
}

/// The gzip of `bytes`, if it is smaller.
pub(super) fn smaller(bytes: &[u8]) -> Option<Vec<u8>> {
    let compressed = gzip(bytes);
    (compressed.len() < bytes.len()).then_some(compressed)
}

/// Types outside `text/` whose bytes are text: they are compressed here, and
/// their Content-Type says `charset=utf-8`.
pub(super) const TEXTUAL_TYPES: &[&str] = &[
    "application/javascript",
    "application/json",
    "application/xml",
    "application/manifest+json",
    "application/rss+xml",
    "application/atom+xml",
    "image/svg+xml",
];

/// Binary types that compress well all the same.
const COMPRESSIBLE_BINARY_TYPES: &[&str] = &["application/wasm", "font/ttf", "font/otf"];

/// Types whose bytes are not compressed already.
fn compresses(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || TEXTUAL_TYPES.contains(&essence.as_str())
        || COMPRESSIBLE_BINARY_TYPES.contains(&essence.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_worth_it_from_its_minimum_and_only_in_memory() {
        let html = "text/html; charset=utf-8";
        assert!(worth_trying(html, MIN_LEN, true));
        assert!(!worth_trying(html, MIN_LEN - 1, true), "too small to gain");
        assert!(!worth_trying(html, 1 << 20, false), "sent by sendfile");
        for kind in [
            "text/css",
            "application/javascript; charset=utf-8",
            "image/svg+xml",
            "application/wasm",
            "font/ttf",
        ] {
            assert!(worth_trying(kind, 4096, true), "{kind}");
        }
        for kind in ["image/png", "video/mp4", "application/gzip", "font/woff2"] {
            assert!(!worth_trying(kind, 4096, true), "{kind}");
        }
    }

    #[test]
    fn only_a_smaller_result_is_kept() {
        let text = "the same line again\n".repeat(64);
        let compressed = smaller(text.as_bytes()).expect("repetitive text shrinks");
        assert!(compressed.len() < text.len() / 4);
        let mut noise = Vec::with_capacity(4096);
        let mut state = 0x2545_f491_u32;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            noise.push(state as u8);
        }
        assert_eq!(smaller(&noise), None, "noise does not shrink");
    }
}
