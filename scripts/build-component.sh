#!/usr/bin/env bash
# Builds the component to target/wasm32-wasip2/release/autodeploy.wasm.
#
# Normal path: rustup has the wasm32-wasip2 standard library → plain `cargo build`.
# Fallback (machines whose rustup cannot download it): Debian's rustc-web, whose version
# matches, builds std from its own source (-Zbuild-std) and rustup's wasm-component-ld
# links the component. The Debian packages are installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/wasm32-wasip2/release/autodeploy.wasm
say() { echo "component: $*" >&2; }
. scripts/debian.sh

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  say "rustup has the wasm32-wasip2 target: cargo build --target wasm32-wasip2 --release"
  cargo build -p autodeploy --target wasm32-wasip2 --release
  path=rustup
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
  # This path builds std itself, so it can also drop panic locations and messages
  # (-Zlocation-detail=none, -Cpanic=immediate-abort: 358 → 321 KB). A panic still
  # traps (the host answers 500 and the sender retries); it just prints nothing.
  PATH="$linker_dir:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-L /usr/lib/wasm32-wasi -Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort" \
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
