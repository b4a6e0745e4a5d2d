#!/usr/bin/env bash
# Builds the component to target/wasm32-wasip2/release/autodeploy.wasm.
#
# Normal path: rustup has the wasm32-wasip2 standard library → `cargo build`, with std
# rebuilt from rustup's rust-src without panic messages when it can be (see below).
# Fallback (machines whose rustup cannot download it): Debian's rustc-web, whose version
# matches, builds std from its own source (-Zbuild-std) and rustup's wasm-component-ld
# links the component. The Debian packages are installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/wasm32-wasip2/release/autodeploy.wasm
say() { echo "component: $*" >&2; }
. scripts/debian.sh

# std without panic messages and locations (-Zlocation-detail=none,
# -Cpanic=immediate-abort): a panic still traps (the host answers 500 and the sender
# retries); it just prints nothing. About 40 KB less, which keeps the component within
# its 400 KB budget. Needs std's source (-Zbuild-std).
SMALL_STD_FLAGS="-Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort"

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  # With std's source (rustup's rust-src component, added here when it can be), std is
  # built as the fallback builds it; without, rustup's prebuilt std keeps its panic
  # machinery and the component is about 40 KB larger (over the budget).
  if { rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
       rustup component add rust-src >/dev/null 2>&1; } &&
     RUSTC_BOOTSTRAP=1 RUSTFLAGS="$SMALL_STD_FLAGS" CARGO_TARGET_DIR=target/wasm-std \
       cargo build -p autodeploy --release -Zbuild-std=std,panic_abort --target wasm32-wasip2; then
    say "rustup target, std built from rust-src without panic messages"
    mkdir -p "$(dirname "$out")"
    cp target/wasm-std/wasm32-wasip2/release/autodeploy.wasm "$out"
    path=rustup-std
  else
    say "rustup has the wasm32-wasip2 target: cargo build --target wasm32-wasip2 --release"
    say "(no rust-src: std keeps its panic messages; 'rustup component add rust-src' saves ~40 KB)"
    cargo build -p autodeploy --target wasm32-wasip2 --release
    path=rustup
  fi
else
  say "rustup has no wasm32-wasip2 std: fallback build with Debian rustc-web and -Zbuild-std"
  need=()
  for pkg in rustc-web cargo-web rust-web-src wasi-libc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    install_debian component "the wasm32 toolchain" "${need[@]}"
  fi
  linker_dir="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin"
  [ -x "$linker_dir/wasm-component-ld" ] || { say "no wasm-component-ld in $linker_dir"; exit 1; }
  # This path builds std itself, so it also drops panic locations and messages.
  PATH="$linker_dir:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-L /usr/lib/wasm32-wasi $SMALL_STD_FLAGS" \
    CARGO_TARGET_DIR=target/wasm-fallback \
    /usr/bin/cargo build -p autodeploy --release -Zbuild-std=std,panic_abort \
    --target wasm32-wasip2
  mkdir -p "$(dirname "$out")"
  cp target/wasm-fallback/wasm32-wasip2/release/autodeploy.wasm "$out"
  path=fallback
fi
# Which path built it: the e2e size test holds each path to its own budget.
echo "$path" >"$out.build"
mkdir -p target/tools
# binaryen's wasm-opt shrinks the core module by about a sixth, at no cost in speed, and
# the component's debug names (~12 KB) are never read at run time
# (scripts/finish-component.rs). binaryen is installed from Debian when missing.
command -v wasm-opt >/dev/null || install_debian component wasm-opt binaryen
rustc --edition 2021 -O -o target/tools/finish-component scripts/finish-component.rs
target/tools/finish-component "$out"
say "built $out ($(stat -c %s "$out") bytes)"
