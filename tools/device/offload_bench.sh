#!/usr/bin/env bash
# The offload tier on the GPU machine, the figures of docs/offload.md: Llama-3-8B's shape with
# random weights in bf16 (8 192 positions), configs/gpu-bench.toml, `loom ab --clock measured`
# (each step takes the time it took on the GPU; idle gaps between arrivals are skipped).
#   tools/device/offload_bench.sh
# 1. Returning turns by history length: three conversations each of 1 024, 2 048, 4 096 and
#    7 936 tokens ask once (one output token), then each comes back with its history, one stand-in
#    answer token and 31 new tokens (16 output tokens). Requests arrive 100 s apart, so each runs
#    alone; a pool of 640 blocks (10 240 tokens) holds one conversation, so each has been evicted
#    when it comes back: without the tier (none) it recomputes its history, with it the history
#    loads from pinned host memory, its blocks copied out when they were evicted (offload: in two
#    groups of layers, each layer waiting for its own; offload-1: in one, the forward waiting for
#    all of it; offload-4, offload-8: in four, eight) or as soon as they were computed (offload-save,
#    save_new_blocks = true). The first arm (cached) has
#    a pool that holds every history: its outputs come from the same KV as the loaded ones, so the
#    tier's outputs must equal it token for token (a recomputed history may differ in bf16).
#    The table: each returning turn's TTFT, by history length (one run: three requests a length).
# 2. The multi-turn workload (docs/workloads.md) fitted to the model: 48 requests, a pool of 1 024
#    blocks (16 384 tokens) for eight conversations of up to 8k tokens; two seeds (two traces).
# Reports go to /tmp/offload-*; report.json of each and the tables to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-} LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-3-8b-bf16}
out=${OUT:-/tmp}
loom=$pack/bin/loom
[ -e "$model" ] || /usr/bin/time -f "mkmodel: %e s" "$loom" mkmodel --preset llama-3-8b --dtype bf16 -o "$model" > /dev/null
common=(--set model.path="$model" --set model.dtype=bf16 --set engine.max_model_len=8192 --clock measured)
arm() {  # name num_blocks [kv_connector lines]: configs/gpu-bench.toml (its [kv] last) with them
  local name=$1 blocks=$2; shift 2
  { cat configs/gpu-bench.toml; echo "num_blocks = $blocks"; printf '%s\n' "$@"; } > "/tmp/$name.toml"
}

python3 - /tmp/offload-returning.jsonl <<'PY'
import json, random, sys
rng = random.Random(11)
sizes, per_size = [1024, 2048, 4096, 7936], 3
convs = [(s, c, [1] + [rng.randrange(3, 128000) for _ in range(s - 1)]) for s in sizes for c in range(per_size)]
lines, t = [], 0.0
for turn in (0, 1):
    for size, c, history in convs:
        prompt = history if turn == 0 else history + [rng.randrange(3, 128000) for _ in range(32)]
        lines.append({"id": f"h{size}-c{c}-t{turn}", "prompt_token_ids": prompt, "max_tokens": 1 if turn == 0 else 16,
                      "ignore_eos": True, "arrival_time": t, "temperature": 0})
        t += 100.0
with open(sys.argv[1], "w") as f:
    for line in lines: f.write(json.dumps(line) + "\n")
PY
arm cached 16384; arm none 640
arm offload 640 '[kv_connector]' 'plugin = "offload"'
arm offload-1 640 '[kv_connector]' 'plugin = "offload"' 'load_layer_groups = 1'
arm offload-4 640 '[kv_connector]' 'plugin = "offload"' 'load_layer_groups = 4'
arm offload-8 640 '[kv_connector]' 'plugin = "offload"' 'load_layer_groups = 8'
arm offload-save 640 '[kv_connector]' 'plugin = "offload"' 'save_new_blocks = true'
"$loom" ab "${common[@]}" --config /tmp/cached.toml --config /tmp/none.toml --config /tmp/offload.toml \
  --config /tmp/offload-1.toml --config /tmp/offload-4.toml --config /tmp/offload-8.toml --config /tmp/offload-save.toml --workload /tmp/offload-returning.jsonl --report /tmp/offload-returning > "$out/returning.txt" 2> /tmp/offload-returning.log || tail -5 /tmp/offload-returning.log
arm none 1024
arm offload 1024 '[kv_connector]' 'plugin = "offload"'
arm offload-save 1024 '[kv_connector]' 'plugin = "offload"' 'save_new_blocks = true'
"$loom" ab "${common[@]}" --config /tmp/none.toml --config /tmp/offload.toml --config /tmp/offload-save.toml \
  --workload multi-turn --requests 48 --seeds 2 --report /tmp/offload-multiturn > "$out/multiturn.txt" 2> /tmp/offload-multiturn.log || tail -5 /tmp/offload-multiturn.log
cp /tmp/offload-returning/report.json "$out/returning.json" 2>/dev/null
cp /tmp/offload-multiturn/report.json "$out/multiturn.json" 2>/dev/null
cat /tmp/offload-returning.log /tmp/offload-multiturn.log | grep -v "^\s*$" | tail -8

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def arms(name):
    try: return {a["name"]: a for a in json.load(open(f"{out}/{name}.json"))["arms"]}
    except Exception as e: print(f"{name}: no report ({e})"); return {}
def rates(arm):
    c = arm.get("kv_connector", {})
    parts = []
    for way, to in (("in", "host->device"), ("out", "device->host")):
        b, ns, peak = c.get(f"copied_{way}_bytes", 0), c.get(f"copy_{way}_ns", 0), c.get(f"peak_{way}_mb_per_s", 0)
        if b and ns:
            parts.append(f"{to} {b/1e9:.2f} GB at {b/ns:.1f} GB/s = {100*b/ns*1e3/peak:.0f}% of {peak/1e3:.1f}" if peak
                         else f"{to} {b/1e9:.2f} GB at {b/ns:.1f} GB/s")
    return "; ".join(parts)
r = arms("returning")
if r:
    print("\n== returning turns: TTFT ms (three conversations each) ==")
    names = list(r)
    loaded = [n for n in names if n.startswith("offload")]
    print(f"{'history':>8}" + "".join(f"{n:>20}" for n in names) + "   none / " + ", ".join(loaded) + " (medians)")
    for size in (1024, 2048, 4096, 7936):
        t = {n: sorted(q["ttft_ms"] for q in a["requests"] if q["id"].startswith(f"h{size}-") and "-t1#" in q["id"])
             for n, a in r.items()}
        med = {n: statistics.median(v) if v else float("nan") for n, v in t.items()}
        print(f"{size:>8}" + "".join(f"{', '.join(f'{x:.1f}' for x in t[n]):>20}" for n in names) +
              "   " + ", ".join(f"{med['none'] / med[n]:.1f}x" for n in loaded))
    for n, a in r.items():
        print(f"{n}: outputs identical to {names[0]}: {a['outputs_identical']}; copies: {rates(a)}")
m = arms("multiturn")
if m:
    print("\n== multi-turn workload (48 requests) ==")
    for n, a in m.items():
        print(f"{n:>8}: hit rate {a['prefix_hit_rate']:.3f}, computed {a['recomputed_prefill_tokens']:.0f}, "
              f"loaded {a['loaded_prefill_tokens']:.0f} prefill tokens; TTFT p50 {a['ttft_ms']['p50']:.0f} "
              f"p90 {a['ttft_ms']['p90']:.0f} ms; {a['throughput_tok_s']:.0f} tok/s; identical {a['outputs_identical']}")
        if a.get("kv_connector"): print("          copies:", rates(a))
PY
