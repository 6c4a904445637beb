#!/usr/bin/env bash
# Sets up and builds Loom, then runs its main job on this machine.
#   tools/demo.sh [--cuda auto|on|off]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$(tools/setup.sh "$@" | tail -n 1)
loom="$build_dir/bin/loom"

echo "== the plugins Loom finds =="
"$loom" plugins
echo
echo "== configs/default.toml, checked and fully resolved =="
"$loom" config --explain configs/default.toml
