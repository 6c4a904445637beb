#!/usr/bin/env bash
# Per-kernel time of one batch-1 decode step (the table in docs/benchmarks.md), on the GPU machine
# with Nsight Compute: runs a short batch-1 bench under ncu, keeps the kernels between the last two
# embedding launches (one whole decode step) and prints, per kernel, launches, total and mean time
# and the DRAM read rate. Clocks and caches are left as they run (no ncu clock or cache control).
#   tools/device/profile_decode.sh [MODEL_DIR]     (default: the gpu_bench.sh model)
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-}
export LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
model=${1:-${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}}
csv=${OUT:-/tmp}/decode-profile.csv
ncu=${NCU:-/usr/local/cuda/bin/ncu}
"$ncu" --clock-control none --cache-control none --csv --print-units base -c 1200 \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size \
  "$pack/bin/loom" bench --config configs/gpu-bench.toml --set model.path="$model" --run 1,128,4 > "$csv" 2>/dev/null
python3 - "$csv" <<'PY'
import csv, re, sys
from collections import OrderedDict
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"')) if r]
head, rows = rows[0], rows[1:]
ix = {k: head.index(k) for k in ("ID", "Kernel Name", "Metric Name", "Metric Value")}
kernels = OrderedDict()
for r in rows:
    k = kernels.setdefault(int(r[ix["ID"]]), {"name": r[ix["Kernel Name"]]})
    k[r[ix["Metric Name"]]] = float(r[ix["Metric Value"]].replace(",", ""))
seq = list(kernels.values())
starts = [i for i, k in enumerate(seq) if "embedding" in k["name"]]
if len(starts) < 2:
    sys.exit("profile: fewer than two decode steps captured")
step = seq[starts[-2]:starts[-1]]
def short(name):
    name = re.sub(r"\(.*", "", name.replace("(anonymous namespace)::", ""))
    return name.split("::")[-1]
groups = OrderedDict()
for k in step:
    key = (short(k["name"]), int(k.get("launch__grid_size", 0)))
    g = groups.setdefault(key, [0, 0.0, 0.0])
    g[0] += 1
    g[1] += k.get("gpu__time_duration.sum", 0) / 1e3  # ns -> us
    g[2] += k.get("dram__bytes_read.sum", 0)
total = sum(g[1] for g in groups.values())
print(f"== one batch-1 decode step: {len(step)} kernels, {total:.0f} us of kernel time ==")
print(f"{'kernel':48} {'grid':>6} {'calls':>5} {'total us':>9} {'mean us':>8} {'share':>6} {'read GB/s':>9}")
for (name, grid), (n, us, by) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
    print(f"{name[:48]:48} {grid:6d} {n:5d} {us:9.1f} {us / n:8.2f} {100 * us / total:5.1f}% {by / us / 1e3 if us else 0:9.0f}")
PY
