#!/usr/bin/env bash
# Installs what Loom needs from Debian packages (when missing) and builds it.
#   tools/setup.sh [--cuda auto|on|off] [--build-dir DIR] [--debug] [--target T] [-- CMAKE_ARGS...]
# --target builds one target (default: all). Arguments after -- go to CMake's configure step and
# win over the defaults here.
# Prints the build folder's path as its last line. Safe to run again: it only does what is left.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda=auto
build_dir=""
build_type=Release
target=all
cmake_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) cuda=$2; shift 2 ;;
    --cuda=*) cuda=${1#*=}; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    --debug) build_type=Debug; shift ;;
    --target) target=$2; shift 2 ;;
    --) shift; cmake_args=("$@"); break ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$cuda" in auto|on|off) ;; *) echo "setup.sh: --cuda must be auto, on or off" >&2; exit 2 ;; esac
[ -n "$build_dir" ] || { [ "$cuda" = off ] && build_dir=build-nocuda || build_dir=build; }

packages=(cmake g++ make pkg-config libboost-dev libboost-program-options-dev libboost-filesystem-dev
          libtomlplusplus-dev libsentencepiece-dev libpcre2-dev libicu-dev libgtest-dev libbenchmark-dev nlohmann-json3-dev)
# shellcheck source=tools/install_packages.sh
source tools/install_packages.sh
install_missing setup "${packages[@]}"

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DLOOM_CUDA="${cuda^^}" \
      ${LOOM_WERROR:+-DLOOM_WERROR=$LOOM_WERROR} ${cmake_args[@]+"${cmake_args[@]}"} >&2
cmake --build "$build_dir" -j "$jobs" --target "$target" >&2
echo "$build_dir"
