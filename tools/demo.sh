#!/usr/bin/env bash
# Sets up and builds Loom, then runs its main job: batch generation from the command line.
#   tools/demo.sh [--cuda auto|on|off]
# 1. Generates a demo model (random weights, TinyStories-15M shape, with the Llama-2 tokenizer
#    from ../shared/models so that text goes in and out) and generates for three text prompts.
#    The weights are random: the text is fluent-looking nonsense. Point [model] path at any
#    Hugging Face Llama-family directory for real text.
# 2. Runs the real trained stories260K checkpoint on token-id prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${LOOM_BUILD_DIR:-$(tools/setup.sh "$@" | tail -n 1)}
loom="$build_dir/bin/loom"
models="${LOOM_TEST_MODELS:-../shared/models}"

if [ ! -f "$build_dir/models/demo/config.json" ]; then
  tokenizer=()
  [ -f "$models/llama2-tokenizer.model" ] && tokenizer=(--tokenizer "$models/llama2-tokenizer.model")
  "$loom" mkmodel --output "$build_dir/models/demo" --preset tinystories-15m --max-position 2048 --seed 1 "${tokenizer[@]}"
fi
# The default config names build/models/demo; another build folder is passed as an override.
model_override=(--set "model.path=$(realpath "$build_dir/models/demo")")

echo "== loom generate: the demo model (random weights!), text prompts =="
"$loom" generate --config configs/default.toml "${model_override[@]}" --input tools/examples/prompts.txt \
  --set sampling.max_tokens=24 --set sampling.temperature=0.8

if [ -f "$models/stories260K.bin" ]; then
  echo
  echo "== loom generate: the real stories260K checkpoint, token-id prompts =="
  "$loom" generate --config configs/stories260K.toml --input tools/examples/stories260K.jsonl
fi
