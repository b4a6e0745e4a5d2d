#!/usr/bin/env bash
# Reproduces every figure of bench/results.md on this machine, in one run:
#   1. criterion micro-benchmarks of the pure core (autodeploy::evaluate::evaluate);
#   2. the component in runtime-host: size, Runtime::load, per-request instance cost;
#   3. a load test, side by side: runtime-host serving the component vs adnanh/webhook
#      doing the same checks, under the same wrk script, for three paths.
# Installs what it needs (wrk, webhook from Debian; needs root or sudo for that).
# Knobs: BENCH_DURATION (wrk seconds per run, default 10), BENCH_CONNECTIONS (16),
# BENCH_THREADS (wrk threads, 2), BENCH_ITERATIONS (component bench, 2000).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
DURATION="${BENCH_DURATION:-10}"
CONNS="${BENCH_CONNECTIONS:-16}"
THREADS="${BENCH_THREADS:-2}"
ITER="${BENCH_ITERATIONS:-2000}"
export CARGO_TARGET_DIR="$here/target"
work="$here/target/load"
mkdir -p "$work"
out="$here/results.md"
HOST_PORT=3100 PLATFORM_PORT=3101 PEER_PORT=3102

# --- tools ----------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v webhook >/dev/null || need+=(webhook)
if ((${#need[@]})); then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y "${need[@]}"
fi
command -v python3 >/dev/null || { echo "python3 is needed to write results.md" >&2; exit 1; }

# --- builds (bench/target; the test build cache in target/ is not touched) --------
component="$root/target/wasm32-wasip2/release/autodeploy.wasm"
[ -f "$component" ] || scripts/build-component.sh
cargo build --release --manifest-path "$here/Cargo.toml" -p autodeploy-host -p autodeploy-bench
cargo bench --no-run --manifest-path "$here/Cargo.toml" -p autodeploy-bench-core --bench core
bin="$CARGO_TARGET_DIR/release"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# --- 1. core micro-benchmarks ----------------------------------------------------
echo "== criterion: core" >&2
cargo bench --manifest-path "$here/Cargo.toml" -p autodeploy-bench-core --bench core -- --noplot | tee "$work/criterion.txt"

# --- 2. component ------------------------------------------------------------------
echo "== component in runtime-host" >&2
"$bin/component" "$component" "$ITER" | tee "$work/component.md"

# --- 3. load test -------------------------------------------------------------------
"$bin/inputs" "$work"
# shellcheck disable=SC1091
. "$work/env"
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

"$bin/stub_platform" "127.0.0.1:$PLATFORM_PORT" & pids+=($!)
"$bin/autodeploy-host" serve --listen "127.0.0.1:$HOST_PORT" \
  --var admin_token=bench-admin-token \
  --var "platform_url=http://127.0.0.1:$PLATFORM_PORT" \
  --var platform_token=bench-platform-token \
  "$component" >"$work/host.log" 2>&1 & pids+=($!)
host_pid=$!
sed "s/@SECRET@/$SECRET/" "$here/load/hooks.json.tmpl" >"$work/hooks.json"
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$PEER_PORT" >"$work/webhook.log" 2>&1 & pids+=($!)
peer_pid=$!
# CPU time a server used (its waited-for children included: webhook's /bin/true), in
# clock ticks, as "user system"; not the stub platform's, which stands for the platform.
ticks() { awk '{ print $14 + $16, $15 + $17 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# `cpu_us=` (user + system) and `sys_us=` (system: the kernel's share, mostly loopback
# TCP) per request, from the ticks before and after one wrk run and its RESULT line.
cpu_per_request() {
  awk -v before="$1" -v after="$2" -v hz="$hz" -v line="$3" 'BEGIN {
    split(before, b, " "); split(after, a, " ")
    user = a[1] - b[1]; sys = a[2] - b[2]
    n = 0; if (match(line, /requests=[0-9]+/)) n = substr(line, RSTART + 9, RLENGTH - 9)
    per = (n > 0 ? 1e6 / hz / n : 0)
    printf "cpu_us=%.1f sys_us=%.1f", (user + sys) * per, sys * per }'
}
wait_port "$PLATFORM_PORT"; wait_port "$HOST_PORT"; wait_port "$PEER_PORT"
curl -fsS -X PUT "http://127.0.0.1:$HOST_PORT/api/apps/shop" \
  -H 'authorization: Bearer bench-admin-token' -H 'content-type: application/json' \
  --data-binary @"$work/app.json" >/dev/null

ours="http://127.0.0.1:$HOST_PORT/hooks/shop/git"
peer="http://127.0.0.1:$PEER_PORT/hooks/shop"
: >"$work/load.txt"
# What wrk signs with: the fixed signature, or in "unique" mode the secret (hook.lua
# then sends a push of its own, signed anew, with every request).
wrk_key() { if [ "$2" = unique ]; then echo "$SECRET"; else echo "$1"; fi; }
# scenario name, body file, signature, delivery mode
scenarios=(
  "invalid_signature push.json $SIG_BAD fixed"
  "ignored_other_branch other-branch.json $SIG_OTHER fixed"
  "deploy push.json $SIG_PUSH unique"
)
for s in "${scenarios[@]}"; do
  read -r name body sig mode <<<"$s"
  for server in autodeploy webhook; do
    url=$ours pid=$host_pid; [ $server = webhook ] && url=$peer pid=$peer_pid
    # One request first, to record what the server answers on this path.
    answer=$(curl -sS -o "$work/answer.txt" -w '%{http_code}' -X POST "$url" \
      -H 'content-type: application/json' -H 'x-github-event: push' \
      -H "x-github-delivery: check-$name-$server" -H "x-hub-signature-256: $sig" \
      --data-binary @"$work/$body")
    snippet=$(head -c 80 "$work/answer.txt" | tr -d '\n|"')
    echo "== wrk $name $server (first answer $answer: $snippet)" >&2
    t0=$(ticks "$pid")
    line=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s \
      -s "$here/load/hook.lua" "$url" -- "$work/$body" "$(wrk_key "$sig" "$mode")" "$mode" "$name-$server-$$" \
      | tee -a "$work/load.txt" | grep '^RESULT\|Non-2xx' | tr '\n' ' ')
    cpu=$(cpu_per_request "$t0" "$(ticks "$pid")" "$line")
    echo "SCENARIO $name $server status=$answer answer=\"$snippet\" $line $cpu" | tee -a "$work/load.txt" >&2
  done
  # Half of autodeploy's peak, paced: latency inside the host from its access log
  # (request parsed → response headers), and the client's view.
  peak=$(grep "^SCENARIO $name autodeploy " "$work/load.txt" | sed 's/.* rps=\([0-9.]*\).*/\1/')
  pace=$(awk -v c="$CONNS" -v r="$peak" 'BEGIN { p = int(c * 1000 * 2 / r + 0.999); print (p < 1 ? 1 : p) }')
  from=$(($(wc -l <"$work/host.log") + 1))
  line=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s "$here/load/paced.lua" "$ours" -- "$work/$body" "$(wrk_key "$sig" "$mode")" "$mode" "$name-half-$$" "$pace" \
    | tee -a "$work/load.txt" | grep '^RESULT' | tr '\n' ' ')
  sleep 1 # the host's log writer catches up
  tail -n +"$from" "$work/host.log" | grep '^\[host\] POST /hooks/' >"$work/half-$name.log" || true
  echo "HALF $name pace_ms=$pace $line" | tee -a "$work/load.txt" >&2
done

# The floor: a fresh instance that does no work (GET /healthz). No path of the component
# can be served faster than this by this host on this machine.
echo "== wrk floor (GET /healthz) autodeploy" >&2
t0=$(ticks "$host_pid")
line=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$here/load/hook.lua" \
  "http://127.0.0.1:$HOST_PORT/healthz" -- GET | tee -a "$work/load.txt" | grep '^RESULT' | tr '\n' ' ')
cpu=$(cpu_per_request "$t0" "$(ticks "$host_pid")" "$line")
echo "SCENARIO floor_healthz autodeploy status=200 answer=\"$(curl -sS "http://127.0.0.1:$HOST_PORT/healthz" | tr -d '"')\" $line $cpu" | tee -a "$work/load.txt" >&2

python3 "$here/report.py" "$work" "$DURATION" "$CONNS" "$THREADS" "$component" >"$out"
echo "wrote $out" >&2
