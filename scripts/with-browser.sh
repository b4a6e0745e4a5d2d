#!/usr/bin/env bash
# Runs a command with a headless browser to drive: scripts/with-browser.sh cargo test …
#
# Installs Debian's chromium and chromium-driver when either is missing, starts
# chromedriver on a free loopback port, passes its URL to the command in
# AUTODEPLOY_TEST_WEBDRIVER=http://127.0.0.1:<port>, and stops it when the command ends,
# whatever its outcome (exit status: the command's).
set -euo pipefail

say() { echo "with-browser: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -gt 0 ] || die "usage: scripts/with-browser.sh COMMAND [ARG]..."

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  . "$(dirname "$0")/debian.sh"
  install_debian with-browser "chromium or chromedriver" chromium chromium-driver
  command -v chromedriver >/dev/null 2>&1 || die "chromedriver is still not on PATH after installing it"
fi

. "$(dirname "$0")/throwaway.sh"
throwaway_setup browser

# chromedriver answers GET /status once it is up. (In a subshell: a write to a port that
# is not listening yet must not take the script down with SIGPIPE.)
ready() {
  local reply
  reply=$( { exec 3<>"/dev/tcp/127.0.0.1/$1" &&
             printf 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
             read -r -t 2 line <&3 && echo "$line"; } 2>/dev/null ) || return 1
  [[ "$reply" == HTTP/1.?\ 200* ]]
}

start() {
  exec chromedriver --port="$1" --allowed-ips=127.0.0.1 >"$dir/chromedriver.log" 2>&1
}
throwaway_start start ready
[ -n "$port" ] || die "chromedriver did not start: $(tail -n 5 "$dir/chromedriver.log" 2>/dev/null)"
say "chromedriver $(chromedriver --version | awk '{print $2}') pid $pid at http://127.0.0.1:$port"

status=0
AUTODEPLOY_TEST_WEBDRIVER="http://127.0.0.1:$port" "$@" || status=$?
exit "$status"
