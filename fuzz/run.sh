#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) each, seeded from fuzz/seeds/
# (the provider fixtures) and from the crashes kept in fuzz/regressions/.
# Needs the nightly toolchain and cargo-fuzz (installed here when missing).
# A crash stops the run; libFuzzer prints the input and stack, and the input is kept
# under fuzz/artifacts/<target>/ — copy it to fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-git_providers image_registries image_reference tag_pattern admin_put json}"
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
for t in $TARGETS; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds+=("fuzz/seeds/$t")
  # The JSON parser starts from the git providers' payloads.
  [ "$t" = json ] && seeds+=("fuzz/seeds/git_providers")
  [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
  echo "== fuzz $t for ${SECONDS_EACH}s" >&2
  cargo +nightly fuzz run -O "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
