#!/usr/bin/env bash
# Packs what the GPU machine needs into .device/ (ignored by git): the loom binary, plugins, the
# GPU test binaries, the libraries the GPU image lacks, and the small shared models the tests use.
#   tools/device/pack.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rm -rf .device/pack && mkdir -p .device/models
tests=()
for t in test_cuda_devices test_cuda_kernels test_cuda_model test_engine_gpu test_offload_copier_gpu; do
  [ -x "$build/tests/$t" ] && tests+=("$build/tests/$t")
done
# The GPU example plugin the engine test runs (sdk/examples/simple_cuda_attention), and the test
# plugins tools/device/spec_bench.sh drafts with (drafter/script).
[ -d "$build/tests/example_plugins" ] && tests+=("$build/tests/example_plugins")
[ -d "$build/tests/hook_plugins" ] && tests+=("$build/tests/hook_plugins")
../shared/tools/device-pack .device/pack "$build/bin/loom" "$build/lib/loom/plugins" "${tests[@]}" >/dev/null
cp ../shared/models/stories260K.bin ../shared/models/stories260K.greedy.json ../shared/models/llama2-tokenizer.model \
   .device/models/
du -sh .device
