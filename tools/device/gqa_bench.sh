#!/usr/bin/env bash
# Issue 18's GQA workloads on the GPU machine: Llama-3-8B's shape in bf16 (random weights from
# Loom's own generator), configs/gpu-bench.toml with max_num_seqs 512, the four workloads on the
# model loaded once; JSON under $OUT and a table last. LOOM_GQA_PROFILE=1 adds the GPU time per
# phase (LOOM_PROFILE=1, graphs off) of a batched decode and, when nsys is present, per kernel.
#   tools/device/gqa_bench.sh [extra loom bench args, e.g. --set scheduler.X=Y]
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=${LOOM_PACK:-.device/pack}
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-}
export LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
model=${LOOM_GQA_MODEL:-/tmp/loom-llama-3-8b-bf16}
out=${OUT:-/tmp}
tag=${LOOM_GQA_TAG:-gqa}
if [ ! -f "$model/config.json" ]; then
  /usr/bin/time -f "mkmodel: %e s" "$pack/bin/loom" mkmodel --preset llama-3-8b --dtype bf16 -o "$model" >/dev/null
fi
runs=${LOOM_GQA_RUNS:---run 1,128,256 --run 1024,128,128 --run 512,1000,1000 --run 256,2048,128}
common=(--config configs/gpu-bench.toml --set model.path="$model" --set model.dtype=bf16 --set engine.max_num_seqs=512)
# shellcheck disable=SC2086
/usr/bin/time -f "bench: %e s" "$pack/bin/loom" bench "${common[@]}" $runs "$@" --json > "$out/$tag.json"
if [ "${LOOM_GQA_PROFILE:-0}" = 1 ]; then
  LOOM_PROFILE=1 "$pack/bin/loom" bench "${common[@]}" --run 512,512,32 "$@" 2>&1 | grep -E "GPU time|^  |GPU busy|throughput"
  if command -v nsys >/dev/null; then
    nsys profile -o /tmp/gqa-prof --force-overwrite true -t cuda "$pack/bin/loom" bench "${common[@]}" \
      --run 512,512,32 "$@" >/dev/null 2>&1
    nsys stats -r cuda_gpu_kern_sum -f csv /tmp/gqa-prof.nsys-rep 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.DictReader(l for l in sys.stdin if l.count(",") > 3))
print("== kernels (nsys, 512 x 512 in, 32 out, incl. warm-up) ==")
for r in rows[:14]:
    print(f"{float(r[\"Time (%)\"]):5.1f}% {int(r[\"Instances\"]):7d} x {float(r[\"Avg (ns)\"])/1e3:9.1f} us  {r[\"Name\"][:90]}")'
  fi
fi
python3 - "$out/$tag.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
runs = runs if isinstance(runs, list) else [runs]
print("== GQA workloads ==", runs[0]["device"])
print(f"{'run':18} {'out tok/s':>10} {'total tok/s':>11} {'%roof':>6} {'preempt':>7} {'recomp%':>7} {'busy%':>6} {'TPOT p50':>8}")
for r in runs:
    print(f"{r['run']:18} {r['output_tok_s']:10.1f} {r['total_tok_s']:11.1f} {100*r.get('fraction_of_roofline',0):6.1f} "
          f"{r['preemptions']:7d} {100*r.get('recomputed_fraction',0):7.2f} {100*r.get('gpu_busy_fraction',0):6.1f} {r['tpot_ms']['p50']:8.2f}")
PY
