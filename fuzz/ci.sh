#!/usr/bin/env bash
# Short fuzz runs for CI (docs/RELIABILITY.md): builds every cargo-fuzz
# target with the nightly toolchain, writes the seed corpora, replays the
# committed regression inputs, then fuzzes each target for
# FUZZ_SECONDS (default 20). Exits non-zero on the first crash, leaving
# the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-20}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/ci.sh: SKIPPED: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

cargo run --quiet --bin make_seeds
cargo +nightly fuzz build -O
targets=$(cargo +nightly fuzz list | grep -v "^make_seeds$")
for t in $targets; do
    mkdir -p "corpus/$t"
    if [ -d "regressions/$t" ]; then
        echo "== $t: regression inputs" >&2
        cargo +nightly fuzz run -O "$t" "regressions/$t" -- -runs=0 >/dev/null
    fi
    echo "== $t: ${SECONDS_EACH}s" >&2
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
        | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+== ERROR|SUMMARY)' >&2 || true
    if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
        echo "fuzz/ci.sh: $t crashed; input(s) in fuzz/artifacts/$t" >&2
        exit 1
    fi
done
echo "fuzz/ci.sh: every target ran ${SECONDS_EACH}s without a crash" >&2
