# Sourced by the project's scripts (setup.sh, fuzz.sh): installs with apt the Debian packages that
# are not installed yet, saying which, as root or through sudo.
#   install_missing WHO PACKAGE...
install_missing() {
  local who=$1 p sudo=""
  shift
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "$who: installing ${missing[*]}" >&2
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}
