# Sourced by the scripts that install what they need from Debian's packages
# (with-redis.sh, with-browser.sh, build-component.sh).

# debian_fail WHO MESSAGE: says why on stderr and exits.
debian_fail() {
  echo "$1: error: $2" >&2
  exit 1
}

# install_debian WHO WHAT PACKAGE...: installs the packages with apt-get, as root or
# through sudo, saying so on stderr as WHO; when that cannot be done, exits saying what
# to run by hand. WHAT names what is missing, for the messages.
install_debian() {
  local who=$1 what=$2
  shift 2
  local by_hand="install it by hand (apt-get install $*) and run again"
  command -v apt-get >/dev/null 2>&1 ||
    debian_fail "$who" "$what is not installed and there is no apt-get to install it: $by_hand"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      debian_fail "$who" "$what is not installed and installing it needs root: run 'sudo apt-get install -y $*' and run again"
    sudo=sudo
  fi
  echo "$who: $what is missing: installing the Debian packages $*" >&2
  if ! { $sudo apt-get update -q >&2 &&
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >&2; }; then
    debian_fail "$who" "could not install $what with apt-get: $by_hand"
  fi
}
