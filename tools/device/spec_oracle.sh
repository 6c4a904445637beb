#!/usr/bin/env bash
# The cost model of speculative decoding on the GPU machine, for a random-weight model whose
# outputs never repeat (so the n-gram drafter has nothing to find): an oracle drafter (the test
# plugin drafter/script) replays the target's own greedy outputs, so every draft is right (up
# to near-ties), and the same drafter with its first draft made wrong accepts nothing. Against
# plain decoding in the same session this measures what a verify step costs and the best
# speedup at k drafts; speedup at acceptance a lies between. Also runs the n-gram drafter.
#   tools/device/spec_oracle.sh SCRIPT_DRAFTER_SO [BATCH ...]   (default batches: 1 32)
# LOOM_SPEC_KS lists the oracle's draft counts (default 4); LOOM_BENCH_CONFIG, LOOM_BENCH_MODEL and
# LOOM_SPEC_VOCAB run it elsewhere (e.g. configs/stories260K.toml on the CPU, vocabulary 500).
# JSON lines under $OUT; one table last.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-} LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
script_drafter=$1; shift
batches=${*:-1 32}
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}
out=${OUT:-/tmp}
loom=$pack/bin/loom
config=${LOOM_BENCH_CONFIG:-configs/gpu-bench.toml}
vocab=${LOOM_SPEC_VOCAB:-32000}
[ -e "$model" ] || "$loom" mkmodel --preset llama-2-7b --dtype f16 -o "$model" > /dev/null
gen() {  # name input extra-args...
  local name=$1 input=$2; shift 2
  "$loom" generate --config "$config" --set model.path="$model" --input "$input" \
    --output "$out/$name.jsonl" "$@" > "$out/$name.log" 2>&1 || tail -3 "$out/$name.log"
}
for b in $batches; do
  python3 - "$b" "$out/requests-$b.jsonl" "$vocab" <<'PY'
import json, random, sys
n, path, vocab = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
with open(path, "w") as f:
    for i in range(n):
        prompt = [1] + [rng.randrange(3, vocab) for _ in range(127)]
        f.write(json.dumps({"id": f"r{i}", "prompt_token_ids": prompt, "max_tokens": 256, "ignore_eos": True}) + "\n")
PY
  gen "plain-$b" "$out/requests-$b.jsonl"
  # The oracle's script: each request's prompt followed by its greedy output.
  python3 - "$out/requests-$b.jsonl" "$out/plain-$b.jsonl" "$out/script-$b.txt" <<'PY'
import json, sys
prompts = {r["id"]: r["prompt_token_ids"] for r in map(json.loads, open(sys.argv[1]))}
with open(sys.argv[3], "w") as f:
    for r in map(json.loads, open(sys.argv[2])):
        f.write(" ".join(map(str, prompts[r["id"]] + r["token_ids"])) + "\n")
PY
  for k in ${LOOM_SPEC_KS:-4}; do
    gen "oracle-$b-k$k" "$out/requests-$b.jsonl" --set speculative.plugin="$script_drafter" \
      --set speculative.script="$out/script-$b.txt" --set speculative.num_draft_tokens=$k
  done
  gen "wrong-$b-k4" "$out/requests-$b.jsonl" --set speculative.plugin="$script_drafter" \
    --set speculative.script="$out/script-$b.txt" --set speculative.wrong_at=0 --set speculative.num_draft_tokens=4
  gen "ngram-$b-k4" "$out/requests-$b.jsonl" --set speculative.plugin=ngram --set speculative.num_draft_tokens=4
done
echo "== speculative decoding, output tokens/s ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)) =="
for f in "$out"/plain-*.log "$out"/oracle-*.log "$out"/wrong-*.log "$out"/ngram-*.log; do
  [ -f "$f" ] || continue
  printf '%-16s %s  %s\n' "$(basename "$f" .log)" "$(grep -o 'throughput *[0-9.]* output' "$f" | grep -o '[0-9.]*')" \
    "$(grep '^speculative' "$f" | cut -c17-)"
done
