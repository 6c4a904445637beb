#!/usr/bin/env bash
# Relay attention against paged attention on the GPU machine, the figures of
# docs/relay-attention.md: random-weight models of Llama-2-7B's shape in fp16 and Llama-3-8B's in
# bf16 (8 192 positions), configs/gpu-bench.toml (prefix caching on), `loom ab --clock measured`
# with --vary attention.plugin=paged,relay, both arms in one process.
#   tools/device/relay_bench.sh [7b|8b|all|quick|figures]   (default all; quick: 7B, 2k shared, 128
#   requests; figures: the docs' table in the order that matters most, for a call of ten minutes)
# Each workload: N requests arriving at once behind one system prompt of S tokens, questions of
# 64-256 tokens, 128 output tokens each (`loom workload --kind system-prompt`); and the chat
# workload (no common prompt) for the cost of relay where nothing is shared. Prints one table
# (output tokens per second of each arm and their ratio) and, for 7B at 2k x 128, the GPU time of
# the attention phase in each arm (`LOOM_PROFILE=1 loom bench --input`, eager steps); reports
# under /tmp/relay-*.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-} LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
loom=$pack/bin/loom
out=${OUT:-/tmp}
which=${1:-all}
table=$out/relay.txt
: > "$table"
: > "$out/relay-profile.txt"

model_for() {  # preset dtype -> path, made once
  local path=/tmp/loom-$1-$2-8k
  [ -e "$path" ] || /usr/bin/time -f "mkmodel $1: %e s" "$loom" mkmodel --preset "$1" --dtype "$2" \
    --max-position 8192 -o "$path" > /dev/null
  echo "$path"
}

pair() {  # label model dtype workload-args...
  local label=$1 model=$2 dtype=$3; shift 3
  local trace=/tmp/relay-$label.jsonl report=/tmp/relay-$label
  "$loom" workload "$@" --max-tokens 128 --rate 1000000 --model "$model" --output "$trace" > /dev/null || return
  "$loom" ab --config configs/gpu-bench.toml --set model.path="$model" --set model.dtype="$dtype" \
    --set engine.max_model_len=8192 --clock measured --workload "$trace" --vary attention.plugin=paged,relay \
    --report "$report" > "$report.txt" 2> "$report.log" || { tail -5 "$report.log"; return; }
  python3 - "$label" "$report/report.json" >> "$table" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
arms = {a["name"]: a for a in json.load(open(path))["arms"]}
p, r = arms["paged"], arms["relay"]
print(f"{label:<26} {p['output_tok_s']:>10.0f} {r['output_tok_s']:>10.0f} "
      f"{r['output_tok_s'] / p['output_tok_s']:>7.2f}x  prefix hits {p['prefix_hit_rate']:.2f}  "
      f"preemptions {p['preemptions']:.0f}/{r['preemptions']:.0f}  identical {r['outputs_identical']}")
PY
}

sysprompt() {  # label model dtype system-tokens requests
  pair "$1" "$2" "$3" --kind system-prompt --system-prompts 1 --system-tokens "$4" --question-tokens 64:256 \
    --requests "$5"
}

profile() {  # label model dtype: GPU time of the attention phase over the label's trace, each arm
  local label=$1 model=$2 dtype=$3
  for arm in paged relay; do
    LOOM_PROFILE=1 "$loom" bench --config configs/gpu-bench.toml --set model.path="$model" --set model.dtype="$dtype" \
      --set engine.max_model_len=8192 --set attention.plugin=$arm --input "/tmp/relay-$label.jsonl" \
      > "/tmp/relay-$label-profile-$arm.txt" 2>&1
    printf '%-26s %-6s %s\n' "$label" "$arm" "$(grep -E 'attention \(plugin\)|time by phase' \
      "/tmp/relay-$label-profile-$arm.txt" | tr -s ' ' | tr '\n' ' ')" >> "$out/relay-profile.txt"
  done
}

if [ "$which" = quick ]; then  # the headline pair alone: 7B, 2k shared tokens, 128 requests
  sysprompt 7b-sys2048-n128 "$(model_for llama-2-7b f16)" fp16 2048 128
fi
if [ "$which" = figures ]; then  # nothing shared, then the length of the prompt, then GQA, then batch
  m=$(model_for llama-2-7b f16)
  pair 7b-chat-n128 "$m" fp16 --kind chat --requests 128
  sysprompt 7b-sys4096-n128 "$m" fp16 4096 128
  sysprompt 7b-sys1024-n128 "$m" fp16 1024 128
  sysprompt 8b-sys2048-n128 "$(model_for llama-3-8b bf16)" bf16 2048 128
  sysprompt 7b-sys2048-n256 "$m" fp16 2048 256
fi
if [ "$which" = all ] || [ "$which" = 7b ]; then
  m=$(model_for llama-2-7b f16)
  for s in 512 1024 2048 4096; do sysprompt "7b-sys$s-n128" "$m" fp16 $s 128; done
  profile 7b-sys2048-n128 "$m" fp16
  sysprompt 7b-sys2048-n64 "$m" fp16 2048 64
  sysprompt 7b-sys2048-n256 "$m" fp16 2048 256
  pair 7b-chat-n128 "$m" fp16 --kind chat --requests 128
fi
if [ "$which" = all ] || [ "$which" = 8b ]; then
  m=$(model_for llama-3-8b bf16)
  for s in 1024 2048 4096; do sysprompt "8b-sys$s-n128" "$m" bf16 $s 128; done
  sysprompt 8b-sys2048-n256 "$m" bf16 2048 256
  pair 8b-chat-n128 "$m" bf16 --kind chat --requests 128
fi
printf '%-26s %10s %10s %8s\n' "workload (output tok/s)" paged relay ratio
cat "$table"
echo "GPU time of the attention phase (LOOM_PROFILE=1: eager steps, CUDA events between phases):"
cat "$out/relay-profile.txt"
