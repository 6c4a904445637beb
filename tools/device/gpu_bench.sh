#!/usr/bin/env bash
# The GPU benchmarks of docs/benchmarks.md, on the GPU machine (see gpu_suite.sh): generates
# Llama-2-7B's shape in fp16 with Loom's own generator, then runs batch-1 decode, an 8 x 2048
# prefill and the 256-prompt throughput workload on the model loaded once; JSON under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-}
export LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}
out=${OUT:-/tmp}
if [ ! -f "$model/config.json" ]; then
  /usr/bin/time -f "mkmodel: %e s" "$pack/bin/loom" mkmodel --preset llama-2-7b --dtype f16 -o "$model"
fi
runs=${LOOM_BENCH_RUNS:---run 1,128,256 --run 4,128,128 --run 8,2048,1 --run 256,100:1024,100:1024 --run 64,512,128}
# shellcheck disable=SC2086
/usr/bin/time -f "bench: %e s" "$pack/bin/loom" bench --config configs/gpu-bench.toml --set model.path="$model" \
  $runs --json > "$out/bench.json"
python3 - "$out/bench.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
runs = runs if isinstance(runs, list) else [runs]
print("== GPU benchmarks ==", runs[0]["device"])
print(f"{'run':28} {'out tok/s':>10} {'GB/s':>8} {'TFLOP/s':>8} {'%BW':>5} {'%GEMM':>6} {'roofline tok/s':>15} {'%roof':>6}")
for r in runs:
    bw, gemm = r.get("device_copy_gb_s", 0), r.get("device_gemm_tflops", 0)
    print(f"{r['run']:28} {r['output_tok_s']:10.1f} {r['achieved_gb_s']:8.0f} {r['achieved_tflops']:8.1f} "
          f"{100*r['achieved_gb_s']/bw if bw else 0:5.0f} {100*r['achieved_tflops']/gemm if gemm else 0:6.0f} "
          f"{r.get('roofline_output_tok_s', 0):15.1f} {100*r.get('fraction_of_roofline', 0):6.0f}")
r0 = runs[0]
print(f"device limits: copy {r0.get('device_copy_gb_s',0):.0f} GB/s, GEMM {r0.get('device_gemm_tflops',0):.0f} TFLOP/s, "
      f"one-row GEMV {r0.get('device_gemv_gb_s',0):.0f} GB/s (cuBLAS {r0.get('device_cublas_gemv_gb_s',0):.0f} GB/s)")
PY
python3 tools/device/plot_gpu_bench.py "$out/bench.json" "$out/gpu-bench.svg"  # docs/images/gpu-bench-h100.svg
# The same model sampling on the GPU (temperature, top-k, top-p) instead of greedy.
if [ "${LOOM_BENCH_SAMPLED:-1}" = 1 ]; then
  "$pack/bin/loom" bench --config configs/gpu-bench.toml --set model.path="$model" --set sampling.temperature=0.8 \
    --set sampling.top_k=50 --set sampling.top_p=0.95 --run 1,128,256 --run 64,512,128 --json > "$out/bench-sampled.json"
  python3 - "$out/bench-sampled.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1])):
    print(f"sampled (T 0.8, top-k 50, top-p 0.95) {r['run']:20} {r['output_tok_s']:10.1f} output tok/s, TPOT p50 {r['tpot_ms']['p50']:.2f} ms")
PY
fi
# Where the time goes: GPU time per phase (LOOM_PROFILE=1 times each group of kernels with events;
# CUDA graphs are off in that mode) for batch-1 decode, the 8 x 2048 prefill and a batched decode.
if [ "${LOOM_BENCH_PROFILE:-1}" = 1 ]; then
  LOOM_PROFILE=1 "$pack/bin/loom" bench --config configs/gpu-bench.toml --set model.path="$model" \
    --run 1,128,64 --run 8,2048,1 --run 64,512,128 2>&1 | grep -E "^==|GPU time|^  |GPU busy|throughput"
fi
