//! libFuzzer target: arbitrary bytes to `r53::dns::respond` over every view.
//!
//! The first byte picks the client (outside every VPC, in VPC A, B or both; v4, v6,
//! v4-mapped) and the transport; the rest is the request. Any broken invariant (a panic,
//! even one `respond` catches, an unreadable or oversized response, a wrong ID, a private
//! record sent outside its VPCs) aborts, and libFuzzer keeps the input in `artifacts/`.
//! Copy such a file into `tests/data/fuzz/regressions/` and `cargo test` replays it.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run respond ../tests/data/fuzz/corpus`.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use r53_fuzz::Harness;

// Built once: the catalog is immutable, as on the server.
static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::new);

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = HARNESS.run(data) {
        panic!("invariant broken: {broken}");
    }
});
