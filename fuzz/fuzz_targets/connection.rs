//! Arbitrary bytes, in arbitrary splits, through one connection: it must never
//! panic, never hold more than its bounds (the harness checks them after every
//! step), and answer the same bytes whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oneloop::http::harness::assert_split_invariant;

fuzz_target!(|data: &[u8]| assert_split_invariant(data));
