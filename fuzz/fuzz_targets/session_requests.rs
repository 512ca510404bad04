//! Structured requests through the product: the same generator as the
//! property tests (`oneloop::testkit::conversation`) turns libFuzzer's bytes
//! into requests with a method, a target of fixture names, Unicode, raw bytes
//! and percent-escapes, chosen headers with arbitrary values, and a body
//! framed or misframed; they go through the real application over a real
//! temporary site, whole and split. Never a panic, never over the bounds,
//! never an answer that depends on the split.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use oneloop::testkit::conversation::Conversation;
use oneloop::testkit::{FixtureSite, assert_split_invariant};

fn site() -> &'static FixtureSite {
    static SITE: OnceLock<FixtureSite> = OnceLock::new();
    SITE.get_or_init(|| FixtureSite::new().expect("a fixture site"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(conversation) = Conversation::arbitrary(&mut Unstructured::new(data)) {
        assert_split_invariant(site(), &conversation.to_bytes(), &conversation.cuts());
    }
});
