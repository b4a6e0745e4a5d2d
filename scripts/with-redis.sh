#!/usr/bin/env bash
# Runs a command with a throwaway Redis: scripts/with-redis.sh cargo test --workspace
#
# Installs redis-server from the Debian packages when it is missing, starts one on a free
# loopback port (no persistence: --save "" --appendonly no), passes its URL to the command
# in AUTODEPLOY_TEST_REDIS=redis://127.0.0.1:<port>/0, and stops it by its pid when the
# command ends, whatever its outcome (exit status: the command's).
#
# The Redis tests pick their own database of that server (runtime-host's unit tests 1-4,
# tests/e2e/redis.rs 5-15) and empty it first, so they run in parallel; the e2e test that
# stops Redis mid-run starts a redis-server of its own.
set -euo pipefail

say() { echo "with-redis: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -gt 0 ] || die "usage: scripts/with-redis.sh COMMAND [ARG]..."

if ! command -v redis-server >/dev/null 2>&1; then
  . "$(dirname "$0")/debian.sh"
  install_debian with-redis redis-server redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server is still not on PATH after installing it"
fi

. "$(dirname "$0")/throwaway.sh"
throwaway_setup redis

# Answers 0 once the server on port $1 answers PING.
ready() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
  else
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    local reply=""
    read -r -t 1 reply <&3 || true
    exec 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

start() {
  exec redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no >/dev/null 2>&1
}
throwaway_start start ready
if [ -z "$port" ]; then
  [ -f "$dir/redis.log" ] && tail -n 20 "$dir/redis.log" >&2
  die "could not start redis-server on a free loopback port"
fi

export AUTODEPLOY_TEST_REDIS="redis://127.0.0.1:$port/0"
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') pid $pid at $AUTODEPLOY_TEST_REDIS"
status=0
"$@" || status=$?
exit "$status"
