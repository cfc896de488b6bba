#!/usr/bin/env bash
# Long fuzzing runs for r53 (issue 7, item 2). CI runs the short versions through `cargo test`.
#
#   fuzz/run.sh [SECONDS] [ITERATIONS]
#
# 1. libFuzzer on `r53::dns::respond` for SECONDS (default 600), when `cargo fuzz` and a
#    nightly toolchain are there (`cargo install cargo-fuzz`), seeded from
#    tests/data/fuzz/corpus; crashers land in fuzz/artifacts/respond/ (copy them into
#    tests/data/fuzz/regressions/).
# 2. The stable property test with ITERATIONS inputs (default 2,000,000) and a fresh seed, and
#    the live flood with 100,000 datagrams, both from tests/it/fuzz.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
iterations=${2:-2000000}

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    work=fuzz/corpus/respond
    mkdir -p "$work"
    cp -n tests/data/fuzz/corpus/* "$work"/ 2>/dev/null || true
    (cd fuzz && cargo +nightly fuzz run respond corpus/respond -- \
        -max_total_time="$seconds" -max_len=2048 -print_final_stats=1)
else
    echo "cargo fuzz or nightly missing: skipping libFuzzer, running the stable test only" >&2
fi

seed=${R53_FUZZ_SEED:-$(date +%s)}
echo "property test: $iterations inputs, seed $seed"
R53_FUZZ_ITERS=$iterations R53_FUZZ_SEED=$seed R53_FLOOD_DATAGRAMS=100000 \
    cargo test --release --test it -- fuzz:: --nocapture
