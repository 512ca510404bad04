//! Arbitrary bytes, in arbitrary splits, through the product: the real
//! application over a real temporary site (`oneloop::testkit`), through one
//! real `Session`. It must never panic, never hold more than its bounds (checked
//! after every step), and answer the same bytes whatever the split.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oneloop::testkit::{FixtureSite, assert_split_invariant, seeded_cuts};

fn site() -> &'static FixtureSite {
    static SITE: OnceLock<FixtureSite> = OnceLock::new();
    SITE.get_or_init(|| FixtureSite::new().expect("a fixture site"))
}

fuzz_target!(|data: &[u8]| {
    // The first byte says where to cut the rest.
    if let Some((&seed, input)) = data.split_first() {
        assert_split_invariant(site(), input, &seeded_cuts(seed, input));
    }
});
