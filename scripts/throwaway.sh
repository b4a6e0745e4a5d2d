# Sourced by with-redis.sh and with-browser.sh: one throwaway server on a free loopback
# port, stopped (and its folder removed) when the script exits, whatever the outcome.

# throwaway_setup NAME: makes the server's folder, $dir, and arms the cleanup.
throwaway_setup() {
  dir="$(mktemp -d "${TMPDIR:-/tmp}/autodeploy-$1.XXXXXX")"
  pid=""
  trap throwaway_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

throwaway_stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

# throwaway_start START READY: `START PORT` runs the server in the foreground (it must
# `exec` it, so that $pid is the server's); `READY PORT` answers 0 once it serves. A free
# port is one nothing answers on; another process may take it before the server binds
# it, so a failed start moves on to another port (five tries, 10 s each). Sets $port
# (empty when every try failed) and $pid.
throwaway_start() {
  local start=$1 ready=$2 candidate
  port=""
  for _ in 1 2 3 4 5; do
    candidate=$((20000 + RANDOM % 40000))
    if { exec 3<>"/dev/tcp/127.0.0.1/$candidate"; } 2>/dev/null; then
      exec 3>&-
      continue
    fi
    "$start" "$candidate" &
    pid=$!
    for _ in $(seq 100); do
      if "$ready" "$candidate"; then
        port=$candidate
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  done
}
