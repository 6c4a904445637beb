#!/usr/bin/env bash
# Runs Loom's GPU tests (and, with --bench, the GPU benchmarks) on the GPU machine, from a pack
# made by tools/device/pack.sh and carried as .device/. Prints a short summary table last.
#   tools/device/gpu_suite.sh [--bench] [gtest filter]
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-}
export LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
export LOOM_TEST_MODELS=${LOOM_TEST_MODELS:-$PWD/.device/models}
export LOOM_TEST_DATA=${LOOM_TEST_DATA:-$PWD/tests/data}   # the transformers references
export LOOM_TEST_EXAMPLE_PLUGINS=$PWD/$pack/bin/example_plugins
bench=0
[ "${1:-}" = "--bench" ] && { bench=1; shift; }
filter=${1:-*}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
summary=()
for t in test_cuda_devices test_cuda_kernels test_cuda_model test_engine_gpu test_offload_copier_gpu; do
  start=$(date +%s%N)
  "$pack/bin/$t" --gtest_filter="$filter" --gtest_brief=1 > "/tmp/$t.log" 2>&1
  rc=$?
  tail -n 40 "/tmp/$t.log"
  passed=$(grep -c '^\[       OK \]' "/tmp/$t.log" || true)
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  summary+=("$(printf '%-22s rc=%d %7d ms ' "$t" "$rc" "$ms") $(grep -E '^\[  (PASSED|FAILED)' "/tmp/$t.log" | tr '\n' ' ')")
done
# The forward pass again with programmatic dependent launch off (LOOM_PDL=0): the model and
# engine tests must pass with the kernels chained either way.
for t in test_cuda_model test_engine_gpu; do
  LOOM_PDL=0 "$pack/bin/$t" --gtest_filter="$filter" --gtest_brief=1 > "/tmp/$t-nopdl.log" 2>&1
  rc=$?
  tail -n 20 "/tmp/$t-nopdl.log"
  summary+=("$(printf '%-22s rc=%d  LOOM_PDL=0 ' "$t" "$rc") $(grep -E '^\[  (PASSED|FAILED)' "/tmp/$t-nopdl.log" | tr '\n' ' ')")
done
if [ $bench = 1 ] && [ -x tools/device/gpu_bench.sh ]; then tools/device/gpu_bench.sh; fi
echo "== GPU suite summary =="
printf '%s\n' "${summary[@]}"
