#!/usr/bin/env bash
# Speculative decoding on the GPU machine, the figures of docs/speculative-decoding.md: Llama-2-7B's
# shape with random weights in fp16, configs/gpu-bench.toml; sections 1 and 2 as `loom ab` runs
# (ab-*.txt under $OUT), 3 and 4 as `loom bench` runs (a warm-up excluded, --json under $OUT); the
# tables last.
#   tools/device/spec_bench.sh SCRIPT_DRAFTER_SO
# 1. A workload whose outputs repeat spans of their prompts, batch 1: the 7B's shape with its
#    decoder layers' weights at std 1e-4 (mkmodel --layer-std), so its next token hangs almost
#    only on the last one (a random bigram model, every layer still computed); prompts P + Y + P,
#    where P is 128 random tokens and Y the model's greedy continuation of P (a plain run): the
#    model goes on with Y again. 256 output tokens, plain against n-gram, three runs each.
# 2. Nothing to accept (random prompts of 128 tokens, 256 out; 1, 32 and 128 sequences): plain
#    against n-gram, two runs each.
# 3. A verify step's cost: the oracle drafter (test plugin drafter/script, replaying the plain
#    run's tokens) with its first draft made wrong and [speculative] adaptive = false, so every
#    step verifies k drafts and keeps none: its TPOT is the verify step's time; k = 1, 2, 4, 8 at
#    batch 1 and k = 4 at batch 32.
# 4. The draft-model drafter's cost: a random model of TinyStories-110M's shape and Llama-2's
#    vocabulary drafting for the 7B (accepting nothing), k = 4 fixed, and the draft alone.
# LOOM_SPEC_SECTIONS picks sections (default: "repeat random verify draft"), LOOM_SPEC_BATCHES
# the batches of section 2.
set -uo pipefail
cd "$(dirname "$0")/../.."
pack=.device/pack
export LD_LIBRARY_PATH=$PWD/$pack/lib:${LD_LIBRARY_PATH:-} LOOM_PLUGIN_PATH=$PWD/$pack/bin/plugins
script_drafter=$1
model=${LOOM_BENCH_MODEL:-/tmp/loom-llama-2-7b-f16}
draft=/tmp/loom-draft-110m-f16
bigram=/tmp/loom-llama-2-7b-bigram-f16
sections=" ${LOOM_SPEC_SECTIONS:-repeat random verify draft} "
want() { [[ $sections == *" $1 "* ]]; }
out=${OUT:-/tmp}
loom=$pack/bin/loom
config=configs/gpu-bench.toml
want random || want verify || want draft && { [ -e "$model" ] || "$loom" mkmodel --preset llama-2-7b --dtype f16 -o "$model" > /dev/null; }
want draft && { [ -e "$draft" ] || "$loom" mkmodel --preset tinystories-110m --vocab 32000 --max-position 4096 \
  --dtype f16 -o "$draft" > /dev/null; }
want repeat && { [ -e "$bigram" ] || "$loom" mkmodel --preset llama-2-7b --layer-std 1e-4 --dtype f16 -o "$bigram" \
  > /dev/null; }
bench() {  # name model args...
  local name=$1 m=$2; shift 2
  "$loom" bench --json --config "$config" --set model.path="$m" "$@" > "$out/$name.json" 2> "$out/$name.log" ||
    tail -3 "$out/$name.log"
}
requests() {  # count file
  python3 - "$1" "$2" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
with open(path, "w") as f:
    for i in range(n):
        prompt = [1] + [rng.randrange(3, 32000) for _ in range(127)]
        f.write(json.dumps({"id": f"r{i}", "prompt_token_ids": prompt, "max_tokens": 256, "ignore_eos": True}) + "\n")
PY
}
continue_plainly() {  # model batch: requests-B, its plain outputs, the oracle's script-B, repeat-B
  local m=$1 b=$2
  requests $b "$out/requests-$b.jsonl"
  "$loom" generate --config "$config" --set model.path="$m" --input "$out/requests-$b.jsonl" \
    --output "$out/plain-$b.jsonl" > /dev/null 2>&1
  python3 - "$out/requests-$b.jsonl" "$out/plain-$b.jsonl" "$out/script-$b.txt" "$out/repeat-$b.jsonl" <<'PY'
import json, sys
prompts = {r["id"]: r["prompt_token_ids"] for r in map(json.loads, open(sys.argv[1]))}
with open(sys.argv[3], "w") as script, open(sys.argv[4], "w") as repeat:
    for r in map(json.loads, open(sys.argv[2])):
        p = prompts[r["id"]]
        script.write(" ".join(map(str, p + r["token_ids"])) + "\n")
        repeat.write(json.dumps({"id": r["id"], "prompt_token_ids": p + r["token_ids"] + p[1:], "max_tokens": 256,
                                 "ignore_eos": True}) + "\n")
PY
}
oracle() {  # batch k
  echo --set speculative.plugin="$script_drafter" --set speculative.script="$out/script-$1.txt" \
    --set speculative.wrong_at=0 --set speculative.adaptive=false --set speculative.num_draft_tokens=$2
}
# Sections 1 and 2 as `loom ab` (one process, the model loaded once, arms alternating): plain
# against n-gram (k = 4 by default), each run's seconds and the arms' means in ab-*.txt.
ab() {  # name model trace seeds
  "$loom" ab --config "$config" --set model.path="$2" --workload "$3" --vary speculative.plugin=none,ngram \
    --seeds "$4" > "$out/ab-$1.txt" 2>&1 || tail -3 "$out/ab-$1.txt"
}
if want repeat; then
  continue_plainly "$bigram" 1
  ab repeat "$bigram" "$out/repeat-1.jsonl" 3
fi
if want random; then
  for b in ${LOOM_SPEC_BATCHES:-1 32 128}; do
    requests $b "$out/random-$b.jsonl"
    ab random-$b "$model" "$out/random-$b.jsonl" 2
  done
fi
if want verify; then
  for b in 1 32; do continue_plainly "$model" $b; done
  bench verify-1-plain "$model" --input "$out/requests-1.jsonl"
  for k in 1 2 4 8; do bench verify-1-k$k "$model" --input "$out/requests-1.jsonl" $(oracle 1 $k); done
  bench verify-32-plain "$model" --input "$out/requests-32.jsonl"
  bench verify-32-k4 "$model" --input "$out/requests-32.jsonl" $(oracle 32 4)
fi
if want draft; then
  [ -e "$out/requests-1.jsonl" ] || requests 1 "$out/requests-1.jsonl"
  bench draft-alone "$draft" --run 1,128,256
  bench draft-k4 "$model" --input "$out/requests-1.jsonl" --set speculative.plugin=draft_model \
    --set speculative.model="$draft" --set speculative.num_draft_tokens=4 --set speculative.adaptive=false
fi
echo "== speculative decoding ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)) =="
for f in "$out"/ab-*.txt; do
  [ -e "$f" ] || continue
  echo "-- $(basename "$f" .txt): seconds per run, then the arms' means"
  grep -E "seed|throughput|acceptance|per verify|identical" "$f"
done
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
print(f"{'run':<18}{'out tok/s':>11}{'TPOT p50 ms':>13}{'accepted':>16}{'tok/verify':>11}")
for name in sorted(f[:-5] for f in os.listdir(out) if f.endswith(".json")):
    try:
        j = json.load(open(os.path.join(out, name + ".json")))
    except Exception:
        print(f"{name:<18} (no result)"); continue
    acc = f"{j['accepted_draft_tokens']}/{j['draft_tokens']}" if j["draft_tokens"] else "-"
    print(f"{name:<18}{j['output_tok_s']:>11.1f}{j['tpot_ms']['p50']:>13.3f}{acc:>16}{j['tokens_per_verify_step']:>11.2f}")
PY
