//! Arbitrary bytes as a request head: the scanner and parser must never panic,
//! and what parses must have a consistent framing decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oneloop::testkit::parsers::{HeadScanner, Limits, parse_head, semantics};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut scanner = HeadScanner::default();
    // Scan as it would arrive, a few bytes at a time.
    let mut found = None;
    for end in (0..=data.len()).step_by(7).chain([data.len()]) {
        match scanner.scan(&data[..end], &limits) {
            Ok(Some(len)) => {
                found = Some(len);
                break;
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
    let Some(len) = found else { return };
    assert!(len <= data.len());
    if let Ok(parsed) = parse_head(&data[..len], &limits) {
        let _ = parsed.path();
        let _ = parsed.query();
        let _ = parsed.request_line();
        let _ = semantics(&parsed, limits.max_body_bytes);
    }
});
