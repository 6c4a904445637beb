#!/usr/bin/env bash
# Relay attention against paged attention on the GPU machine, the figures of
# docs/relay-attention.md: random-weight models of Llama-2-7B's shape in fp16 and Llama-3-8B's in
# bf16 (8 192 positions), configs/gpu-bench.toml (prefix caching on), `loom ab --clock measured`
# with --vary attention.plugin=paged,relay, both arms in one process.
#   tools/device/relay_bench.sh [7b|8b|all|quick]   (default all; 7b and 8b: one model each, a call
#   of about nine minutes; quick: 7B, 2k shared, 128 requests)
# Each workload: N requests arriving at once behind one system prompt of S tokens, questions of
# 64-256 tokens, 128 output tokens each (`loom workload --kind system-prompt`); and the chat
# workload (no common prompt) for the cost of relay where nothing is shared. Prints one table
# (output tokens per second of each arm and their ratio; the headline pairs twice, for a range)
# and, at 2k x 128, the GPU time of the attention phase of the decode steps in each arm
# (`LOOM_PROFILE=decode loom bench --input`, eager steps) beside the KV bytes each arm reads in an
# average decode step. A pair starts only while the call has RELAY_BUDGET_S (520) seconds left to
# spend; reports under /tmp/relay-*.
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
  budget_left "$label" || return
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

profile() {  # label model dtype system-tokens: attention time of the decode steps against the bytes each arm reads
  local label=$1 model=$2 dtype=$3 system=$4
  budget_left || return
  for arm in paged relay; do
    LOOM_PROFILE=decode "$loom" bench --config configs/gpu-bench.toml --set model.path="$model" --set model.dtype="$dtype" \
      --set engine.max_model_len=8192 --set attention.plugin=$arm --input "/tmp/relay-$label.jsonl" \
      > "/tmp/relay-$label-profile-$arm.txt" 2>&1
  done
  python3 - "$label" "$model/config.json" "$system" "/tmp/relay-$label.jsonl" /tmp/relay-"$label"-profile-{paged,relay}.txt \
    >> "$out/relay-profile.txt" <<'PY'
import json, re, sys
label, config, system, trace, paged, relay = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3]), sys.argv[4], *sys.argv[5:]
kv_heads = config.get("num_key_value_heads", config["num_attention_heads"])
head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
# K and V of one token in every layer; 16-bit KV.
token_bytes = config["num_hidden_layers"] * 2 * kv_heads * head_dim * 2
requests = [json.loads(line) for line in open(trace)]
# An average decode step, every sequence halfway through its output: paged reads each sequence's
# whole context; relay reads the shared prompt once, then each sequence's own tokens.
middle = [len(r["prompt_token_ids"]) + r["max_tokens"] / 2 for r in requests]
reads = {"paged": sum(middle) * token_bytes, "relay": (system + sum(m - system for m in middle)) * token_bytes}
for arm, path in (("paged", paged), ("relay", relay)):
    text = open(path).read()
    steps = re.search(r"time by phase over (\d+) steps", text)
    attention = re.search(r"attention \(plugin\)\s+([\d.]+) ms", text)
    if not steps or not attention:
        print(f"{label:<26} {arm:<6} no profile: {text.strip().splitlines()[-1:]}")
        continue
    ms = float(attention.group(1)) / int(steps.group(1))
    print(f"{label:<26} {arm:<6} {ms:8.3f} ms/step over {steps.group(1):>4} decode steps  "
          f"{reads[arm] / 1e9:7.3f} GB read/step  {reads[arm] / ms / 1e6:7.0f} GB/s")
PY
}

budget_left() {  # pairs start only while the call has time left (the table comes back either way)
  [ "$SECONDS" -lt "${RELAY_BUDGET_S:-520}" ] && return 0
  echo "skipped (time): ${FUNCNAME[1]} $*" >> "$table"
  return 1
}

if [ "$which" = quick ]; then  # the headline pair alone: 7B, 2k shared tokens, 128 requests
  sysprompt 7b-sys2048-n128 "$(model_for llama-2-7b f16)" fp16 2048 128
fi
# One model a call (each ~8 minutes on an H100): the headline pair and nothing shared first, then
# the length of the prompt, the batch, the decode-step profile, and the first two pairs again.
for size in 7b 8b; do
  [ "$which" = all ] || [ "$which" = $size ] || continue
  if [ $size = 7b ]; then m=$(model_for llama-2-7b f16) dtype=fp16; else m=$(model_for llama-3-8b bf16) dtype=bf16; fi
  sysprompt "$size-sys2048-n128" "$m" $dtype 2048 128
  pair "$size-chat-n128" "$m" $dtype --kind chat --requests 128
  for s in 4096 1024 512; do sysprompt "$size-sys$s-n128" "$m" $dtype $s 128; done
  sysprompt "$size-sys2048-n256" "$m" $dtype 2048 256
  sysprompt "$size-sys2048-n64" "$m" $dtype 2048 64
  profile "$size-sys2048-n128" "$m" $dtype 2048
  sysprompt "$size-sys2048-n128-again" "$m" $dtype 2048 128
  pair "$size-chat-n128-again" "$m" $dtype --kind chat --requests 128
done
printf '%-26s %10s %10s %8s\n' "workload (output tok/s)" paged relay ratio
cat "$table"
echo "Attention phase of the decode steps (LOOM_PROFILE=decode: eager steps, CUDA events between phases):"
cat "$out/relay-profile.txt"
