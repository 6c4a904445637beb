#!/usr/bin/env bash
# Same-session A/B of `loom bench` on the GPU machine: the previous version's pack against this
# one's, on the same generated model, in alternating order (A B B A) so that drift in the
# machine's clocks does not favour either. Prints one table; JSON of every run under $OUT.
#   tools/device/ab_bench.sh BASELINE_PACK [CANDIDATE_PACK]   (default candidate: .device/pack)
# A pack is a folder made by shared/tools/device-pack (bin/loom, bin/plugins, lib/); a
# gpu-bench.toml beside its bin/ is used for it when present (the version's own config).
set -uo pipefail
cd "$(dirname "$0")/../.."
base=$1
cand=${2:-.device/pack}
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}
out=${OUT:-/tmp}
short="--run 1,128,256 --run 64,512,128"
long="--run 256,100:1024,100:1024"
bench() {  # pack name runs...
  local pack=$1 name=$2; shift 2
  local config=configs/gpu-bench.toml
  [ -f "$pack/gpu-bench.toml" ] && config=$pack/gpu-bench.toml
  # shellcheck disable=SC2068
  LD_LIBRARY_PATH=$PWD/$pack/lib LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins "$pack/bin/loom" bench --config "$config" \
    --set model.path="$model" $@ --json > "$out/ab-$name.json" 2> "$out/ab-$name.log" || tail -5 "$out/ab-$name.log"
}
if [ ! -f "$model/config.json" ]; then
  LD_LIBRARY_PATH=$PWD/$cand/lib /usr/bin/time -f "mkmodel: %e s" "$cand/bin/loom" mkmodel --preset llama-2-7b \
    --dtype f16 -o "$model"
fi
bench "$base" A1 $short $long
bench "$cand" B1 $short $long
bench "$cand" B2 $short
bench "$base" A2 $short
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = {}
for name in ["A1", "B1", "B2", "A2"]:
    path = os.path.join(out, f"ab-{name}.json")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        continue
    runs = json.load(open(path))
    for r in runs if isinstance(runs, list) else [runs]:
        rows.setdefault(r["run"], {}).setdefault(name[0], []).append(r["output_tok_s"])
        device = r["device"]
print("== A/B (A = baseline, B = candidate), output tokens/s ==", device)
for run, by in rows.items():
    a = ", ".join(f"{x:.1f}" for x in by.get("A", []))
    b = ", ".join(f"{x:.1f}" for x in by.get("B", []))
    print(f"{run:28} A: {a:22} B: {b}")
PY
