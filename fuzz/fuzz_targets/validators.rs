//! Arbitrary Range, If-Range and If-* values against a fixed file: never a
//! panic, and every range handed out lies inside the file and does not overlap.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use oneloop::testkit::parsers::{
    Limits, MAX_RANGES, Validators, evaluate, if_range_holds, parse_head, range_answer,
};

fuzz_target!(|data: &[u8]| {
    let Some((&len_seed, value)) = data.split_first() else {
        return;
    };
    let len = u64::from(len_seed) * 37;
    let Ok(text) = std::str::from_utf8(value) else {
        return;
    };
    if text.contains(['\r', '\n']) {
        return;
    }
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nRange: {text}\r\nIf-Range: {text}\r\nIf-None-Match: {text}\r\n\
         If-Match: {text}\r\nIf-Modified-Since: {text}\r\nIf-Unmodified-Since: {text}\r\n\r\n"
    );
    let Ok(parsed) = parse_head(request.as_bytes(), &Limits::default()) else {
        return;
    };
    let current = Validators::new("\"abc\"".into(), UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let _ = evaluate(&parsed, &current);
    let _ = if_range_holds(&parsed, &current);
    if let Some(ranges) = range_answer(parsed.header("range"), len) {
        assert!(!ranges.is_empty() && ranges.len() <= MAX_RANGES);
        for &(first, last) in &ranges {
            assert!(first <= last && last < len, "{first}-{last} outside {len}");
        }
        let mut sorted = ranges.clone();
        sorted.sort_by_key(|&(first, _)| first);
        assert!(sorted.windows(2).all(|w| w[0].1 < w[1].0));
    }
});
