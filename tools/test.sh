#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite through ctest.
#   tools/test.sh [--cuda auto|on|off|both] [ctest arguments...]
# --cuda both (what CI runs) builds and tests the CUDA build and the CPU-only build in turn.
# GPU tests carry the ctest label `gpu` and skip, saying why, where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda=auto
if [ $# -gt 0 ]; then
  case "$1" in
    --cuda) cuda=$2; shift 2 ;;
    --cuda=*) cuda=${1#*=}; shift ;;
  esac
fi
case "$cuda" in
  both) configs=(auto off) ;;
  auto|on|off) configs=("$cuda") ;;
  *) echo "test.sh: --cuda must be auto, on, off or both" >&2; exit 2 ;;
esac

for config in "${configs[@]}"; do
  build_dir=$(tools/setup.sh --cuda "$config" | tail -n 1)
  echo "== tests in $build_dir (LOOM_CUDA=${config^^}) =="
  (cd "$build_dir" && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@")
done
