#!/usr/bin/env bash
# Relay attention against paged attention on the GPU machine, the figures of
# docs/relay-attention.md: random-weight models of Llama-2-7B's shape in fp16 and Llama-3-8B's in
# bf16 (8 192 positions), configs/gpu-bench.toml (prefix caching on), `loom ab --clock measured`
# with --vary attention.plugin=paged,relay, both arms in one process.
#   [RELAY_BUDGET_S=520] [RELAY_SKIP="label ..."] tools/device/relay_bench.sh [7b|8b|all|quick]
#   (default all, about 16 minutes on an H100: run it twice, the second time skipping the labels
#   the first printed; 7b, 8b: one model; quick: 7B, 2k shared, 128 requests)
# Each workload: N requests arriving at once behind one system prompt of S tokens, questions of
# 64-256 tokens, 128 output tokens each (`loom workload --kind system-prompt`); and the chat
# workload (no common prompt) for the cost of relay where nothing is shared. Prints one table
# (output tokens per second of each arm and their ratio; the headline pairs twice, for a range)
# and, at 2k x 128, the GPU time of the attention phase of the decode steps in each arm
# (`LOOM_PROFILE=decode loom bench --input`, eager steps) beside the KV bytes each arm reads in an
# average decode step. A run starts only before RELAY_BUDGET_S (520) seconds into the call;
# reports under /tmp/relay-*.
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

model_for() {  # 7b|8b -> the model's path, made once
  local preset=llama-2-7b dtype=f16
  [ "$1" = 8b ] && preset=llama-3-8b dtype=bf16
  local path=/tmp/loom-$preset-$dtype-8k
  [ -e "$path" ] || /usr/bin/time -f "mkmodel $preset: %e s" "$loom" mkmodel --preset "$preset" --dtype "$dtype" \
    --max-position 8192 -o "$path" > /dev/null
  echo "$path"
}

dtype_for() { [ "$1" = 8b ] && echo bf16 || echo fp16; }

pair() {  # label 7b|8b workload-args...
  local label=$1 size=$2; shift 2
  budget_left "$label" || return
  local model dtype trace=/tmp/relay-$label.jsonl report=/tmp/relay-$label
  model=$(model_for "$size") dtype=$(dtype_for "$size")
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

sysprompt() {  # 7b|8b system-tokens requests [label suffix]
  pair "$1-sys$2-n$3${4:-}" "$1" --kind system-prompt --system-prompts 1 --system-tokens "$2" \
    --question-tokens 64:256 --requests "$3"
}

profile() {  # 7b|8b system-tokens requests: the decode steps' attention time against the bytes each arm reads
  local size=$1 system=$2 requests=$3 label=$1-sys$2-n$3
  budget_left "$label-profile" || return
  local model dtype
  model=$(model_for "$size") dtype=$(dtype_for "$size")
  [ -e "/tmp/relay-$label.jsonl" ] || "$loom" workload --kind system-prompt --system-prompts 1 --system-tokens "$system" \
    --question-tokens 64:256 --requests "$requests" --max-tokens 128 --rate 1000000 --model "$model" \
    --output "/tmp/relay-$label.jsonl" > /dev/null
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
# (Relay's CTAs each take 32 rows, sharing sequences x the query heads of a KV head, and load the
# prefix once per CTA: `tiles` loads of which L2 may serve all but one.)
middle = [len(r["prompt_token_ids"]) + r["max_tokens"] / 2 for r in requests]
reads = {"paged": sum(middle) * token_bytes, "relay": (system + sum(m - system for m in middle)) * token_bytes}
tiles = -(-len(requests) * (config["num_attention_heads"] // kv_heads) // 32)
for arm, path in (("paged", paged), ("relay", relay)):
    text = open(path).read()
    steps = re.search(r"time by phase over (\d+) steps", text)
    attention = re.search(r"attention \(plugin\)\s+([\d.]+) ms", text)
    if not steps or not attention:
        print(f"{label:<26} {arm:<6} no profile: {text.strip().splitlines()[-1:]}")
        continue
    ms = float(attention.group(1)) / int(steps.group(1))
    print(f"{label:<26} {arm:<6} {ms:8.3f} ms/step over {steps.group(1):>4} decode steps  "
          f"{reads[arm] / 1e9:7.3f} GB read/step  {reads[arm] / ms / 1e6:7.0f} GB/s"
          + (f"  (prefix loaded by {tiles} CTAs a KV head)" if arm == "relay" else ""))
PY
}

budget_left() {  # label: runs start only while the call has time left, and not when RELAY_SKIP names them
  case " ${RELAY_SKIP:-} " in *" $1 "*) return 1 ;; esac
  [ "$SECONDS" -lt "${RELAY_BUDGET_S:-520}" ] && return 0
  echo "skipped (time): $1" >> "$table"
  return 1
}

# In order of what matters most: the headline pairs and nothing shared, the decode steps'
# profile, the length of the prompt and the batch, then the headline pairs again.
plan=()
case $which in
  quick) plan=("sysprompt 7b 2048 128") ;;
  7b|8b) plan=("sysprompt $which 2048 128" "chat $which" "profile $which 2048 128" "rest $which" "again $which") ;;
  all) plan=("sysprompt 7b 2048 128" "chat 7b" "sysprompt 8b 2048 128" "profile 7b 2048 128" "rest 7b" "chat 8b"
             "rest 8b" "profile 8b 2048 128" "again 7b" "again 8b") ;;
esac
chat() { pair "$1-chat-n128${2:-}" "$1" --kind chat --requests 128; }
rest() { for s in 4096 1024 512; do sysprompt "$1" $s 128; done; sysprompt "$1" 2048 256; sysprompt "$1" 2048 64; }
again() { sysprompt "$1" 2048 128 -again; chat "$1" -again; }
for item in "${plan[@]}"; do $item; done
printf '%-26s %10s %10s %8s\n' "workload (output tok/s)" paged relay ratio
cat "$table"
echo "Attention phase of the decode steps (LOOM_PROFILE=decode: eager steps, CUDA events between phases):"
cat "$out/relay-profile.txt"
