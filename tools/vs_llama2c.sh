#!/usr/bin/env bash
# Single-sequence CPU decode, Loom against llama2.c's run.c on the same file in the same run
# (docs/benchmarks.md). Give a folder holding a copy of llama2.c's run.c and tokenizer.bin (not
# part of Loom): this builds run.c as its README's fastest (-Ofast -march=native -fopenmp),
# writes the TinyStories-15M-shaped random model with `loom mkmodel`, then alternates RUNS runs
# of each (greedy, 256 positions, 2 threads) and prints both ranges, the ratio of medians and the CPU.
#   tools/vs_llama2c.sh LLAMA2C_DIR [LOOM_BUILD_DIR] (env RUNS, default 5; THREADS, default 2)
set -euo pipefail
src=${1:?usage: tools/vs_llama2c.sh LLAMA2C_DIR [LOOM_BUILD_DIR]}
build=${2:-build}
runs=${RUNS:-5}
threads=${THREADS:-2}
loom=$(cd "$build" && pwd)/bin/loom
[ -f "$src/run.c" ] && [ -f "$src/tokenizer.bin" ] || { echo "$src: needs run.c and tokenizer.bin from llama2.c" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -Ofast -march=native -fopenmp "$src/run.c" -o "$work/run" -lm
"$loom" mkmodel --format llama2c --preset tinystories-15m -o "$work/ts15.bin" >/dev/null 2>&1
printf '[model]\npath = "%s"\n[engine]\nnum_threads = %d\n' "$work/ts15.bin" "$threads" > "$work/ts15.toml"
peer=() ours=()
for ((i = 0; i < runs; ++i)); do
  peer+=("$(OMP_NUM_THREADS=$threads "$work/run" "$work/ts15.bin" -t 0 -n 256 -z "$src/tokenizer.bin" 2>&1 |
            sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p')")
  ours+=("$("$loom" bench --config "$work/ts15.toml" --num-prompts 1 --input-len 1 --output-len 255 --json 2>/dev/null |
            python3 -c 'import json,sys; print(round(json.load(sys.stdin)["output_tok_s"], 1))')")
done
python3 - "${peer[*]}" "${ours[*]}" "$threads" <<'PY'
import statistics, sys, platform
peer = [float(x) for x in sys.argv[1].split()]
ours = [float(x) for x in sys.argv[2].split()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"CPU: {cpu}, {sys.argv[3]} threads")
print(f"llama2.c run.c (-Ofast -march=native -fopenmp): {min(peer):.0f} - {max(peer):.0f} tokens/s ({len(peer)} runs)")
print(f"Loom (loom bench, 1 prompt, 255 tokens):        {min(ours):.0f} - {max(ours):.0f} tokens/s ({len(ours)} runs)")
print(f"ratio of medians: {statistics.median(ours) / statistics.median(peer):.2f}x")
PY
