//! Structured HTTP/2 through the product: `oneloop::testkit::h2_conversation`
//! turns libFuzzer's bytes into the preface, SETTINGS, and requests said in
//! HTTP/2 (the same requests as `session_requests`), framed and compressed
//! every way a client may and spoiled as section 8 forbids, among the
//! connection's other frames. They go through the real application over a
//! real temporary site, whole and split: never a panic, never over the
//! bounds, never an answer that depends on the split.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use oneloop::testkit::h2_conversation::H2Conversation;
use oneloop::testkit::{FixtureSite, assert_split_invariant};

fn site() -> &'static FixtureSite {
    static SITE: OnceLock<FixtureSite> = OnceLock::new();
    SITE.get_or_init(|| FixtureSite::new().expect("a fixture site"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(conversation) = H2Conversation::arbitrary(&mut Unstructured::new(data)) {
        assert_split_invariant(site(), &conversation.to_bytes(), &conversation.cuts());
    }
});
