#!/usr/bin/env bash
# `loom serve` on the GPU machine, the online figures of docs/server.md and docs/benchmarks.md:
# Llama-2-7B's shape with random weights in fp16 (configs/gpu-bench.toml) served on 127.0.0.1,
# and `loom bench --server` against it at several Poisson rates (random token-id prompts, EOS
# ignored, streamed), each report as JSON under $OUT, one table last.
#   tools/device/serve_bench.sh
# LOOM_SERVE_RATES (default "2 8 32 inf"), LOOM_SERVE_PROMPTS (100), LOOM_SERVE_LENS ("128 128":
# input and output lengths).
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-} LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}
out=${OUT:-/tmp}
loom=$pack/bin/loom
read -r input_len output_len <<< "${LOOM_SERVE_LENS:-128 128}"
[ -e "$model" ] || "$loom" mkmodel --preset llama-2-7b --dtype f16 -o "$model" > /dev/null
"$loom" serve --config configs/gpu-bench.toml --set model.path="$model" --port 0 > "$out/serve.log" 2>&1 &
server=$!
port=
for _ in $(seq 1 600); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$out/serve.log" | grep -o '[0-9]*$')
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "loom serve did not start:"; cat "$out/serve.log"; kill $server; exit 1; }
url=http://127.0.0.1:$port
# A warm-up: CUDA graphs and first launches are paid here, not measured.
"$loom" bench --server "$url" --num-prompts 16 --input-len "$input_len" --output-len 8 --json > /dev/null
for rate in ${LOOM_SERVE_RATES:-2 8 32 inf}; do
  "$loom" bench --server "$url" --rate "$rate" --num-prompts "${LOOM_SERVE_PROMPTS:-100}" --input-len "$input_len" \
    --output-len "$output_len" --seed 1 --json > "$out/rate-$rate.json" 2> "$out/rate-$rate.log" || tail -3 "$out/rate-$rate.log"
done
kill -TERM $server
wait $server
echo "loom serve exited with $? after SIGTERM"
echo "== loom serve, Llama-2-7B fp16 shape, $input_len in / $output_len out ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)) =="
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
print(f"{'rate':>6}{'req/s':>8}{'out tok/s':>11}{'TTFT p50':>10}{'TTFT p99':>10}{'TPOT p50':>10}{'TPOT p99':>10}{'ITL p99':>9}{'goodput':>9}")
for name in sorted((f for f in os.listdir(out) if f.startswith("rate-") and f.endswith(".json")),
                   key=lambda f: float(f[5:-5].replace("inf", "1e9"))):
    try:
        j = json.load(open(os.path.join(out, name)))
    except Exception:
        print(f"{name:>6} (no result)"); continue
    print(f"{str(j['rate']):>6}{j['request_throughput']:>8.2f}{j['output_tok_s']:>11.1f}{j['ttft_ms']['p50']:>10.1f}"
          f"{j['ttft_ms']['p99']:>10.1f}{j['tpot_ms']['p50']:>10.2f}{j['tpot_ms']['p99']:>10.2f}{j['itl_ms']['p99']:>9.2f}"
          f"{j['goodput']:>9.2f}")
PY
