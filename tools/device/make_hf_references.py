#!/usr/bin/env python3
"""Greedy reference continuations from Hugging Face transformers, for Loom's fidelity tests.

Makes a tiny random model of every architecture and config layout Loom supports with
transformers itself, saves it in fp16 (config.json + model.safetensors), reloads the saved folder
in fp32 (so the reference uses the fp16-rounded weights but RoPE frequencies computed exactly,
not rounded by .half()), and decodes a few token-id prompts greedily on the CPU in fp32. A
continuation is cut before the first step whose top-2 logit margin is under 1e-3 of the logit
range (max - mean): there a correct fp32 engine could pick either token.

Runs where transformers is installed (the GPU machine):
    python3 tools/device/make_hf_references.py OUT_DIR
and OUT_DIR/<case>/ holds config.json, model.safetensors and reference.json. Committed under
tests/data/hf_reference/ (docs/model-formats.md says how to remake them).
"""
import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config,
                          Qwen2MoeConfig, Qwen3Config)

MIN_MARGIN = 1e-3      # of the logit range (max - mean), as docs/numerics.md measures gaps
NEW_TOKENS = 20
MIN_KEPT = 8           # a continuation shorter than this after the cut is dropped
PROMPT_LENGTHS = [4, 11, 23, 37]
VOCAB = 512

SMALL = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, hidden_act="silu",
             tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)


def rope(theta, rope_type="default", **extra):
    return dict(rope_type=rope_type, rope_theta=theta, **extra)


LLAMA3 = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=32)
YARN = dict(factor=4.0, original_max_position_embeddings=32)

# name: (config class, its arguments, RoPE parameters, layout written to config.json, what it checks)
CASES = {
    "llama2": (LlamaConfig, {}, rope(10000.0), "v5", "Llama, theta 10 000, no scaling"),
    "llama3": (LlamaConfig, {}, rope(500000.0, "llama3", **LLAMA3), "v5", "Llama-3 RoPE scaling"),
    "llama3_v4": (LlamaConfig, {}, rope(500000.0, "llama3", **LLAMA3), "v4", "Llama-3 scaling, transformers-4 keys"),
    "llama_linear": (LlamaConfig, {}, rope(10000.0, "linear", factor=4.0), "v5", "linear RoPE scaling"),
    "llama_yarn": (LlamaConfig, dict(max_position_embeddings=128), rope(10000.0, "yarn", **YARN), "v5",
                   "YaRN RoPE scaling"),
    "llama_tied": (LlamaConfig, dict(tie_word_embeddings=True), rope(10000.0), "v5", "tied embeddings"),
    "llama_bias": (LlamaConfig, dict(attention_bias=True), rope(10000.0), "v5", "attention_bias (q, k, v, o)"),
    "mistral": (MistralConfig, dict(sliding_window=None), rope(1000000.0), "v5", "Mistral, theta 1e6"),
    "mistral_window": (MistralConfig, dict(sliding_window=64), rope(1000000.0), "v5",
                       "Mistral with a sliding window shorter than max_position_embeddings"),
    "qwen2": (Qwen2Config, dict(use_sliding_window=False), rope(1000000.0), "v5", "Qwen2, QKV bias"),
    "qwen2_v4": (Qwen2Config, dict(use_sliding_window=False), rope(1000000.0), "v4", "Qwen2, transformers-4 keys"),
    "qwen3": (Qwen3Config, dict(head_dim=32, use_sliding_window=False), rope(1000000.0), "v5",
              "Qwen3, QK-norm, head_dim 32 != hidden / heads"),
    "qwen3_yarn_v4": (Qwen3Config, dict(head_dim=32, use_sliding_window=False, max_position_embeddings=128),
                      rope(1000000.0, "yarn", **YARN), "v4", "Qwen3 with YaRN, transformers-4 keys"),
    "mixtral": (MixtralConfig, dict(num_local_experts=4, num_experts_per_tok=2, sliding_window=None),
                rope(1000000.0), "v5", "Mixtral, 4 experts, top 2"),
    "qwen2_moe": (Qwen2MoeConfig, dict(num_hidden_layers=3, num_experts=4, num_experts_per_tok=2,
                                       moe_intermediate_size=48, shared_expert_intermediate_size=80,
                                       norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1],
                                       use_sliding_window=False),
                  rope(1000000.0), "v5", "Qwen2-MoE, shared expert, a dense layer"),
}


def make_config(cls, args, rope_parameters):
    kwargs = dict(SMALL)
    kwargs.update(args)
    return cls(rope_parameters=rope_parameters, **kwargs)


def randomize(model, seed):
    """Weights large enough that attention is sharp (RoPE and theta visibly matter), norms and
    biases away from their 1 / 0 initial values so that reading them wrong shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            elif "embed_tokens" in name:
                p.copy_(noise)
            else:
                p.copy_(0.2 * noise)


def write_layout(folder, layout):
    """Rewrites config.json's RoPE settings in the layout asked for: v5 (rope_parameters only) or
    v4 (top-level rope_theta and rope_scaling only)."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    params = cfg.pop("rope_parameters", None)
    theta = cfg.pop("rope_theta", None)
    scaling = cfg.pop("rope_scaling", None)
    if params is None:  # written in the old layout by this transformers: rebuild the new one
        params = dict(scaling or {"rope_type": "default"})
        params["rope_theta"] = theta
    if layout == "v5":
        cfg["rope_parameters"] = params
    else:
        params = dict(params)
        cfg["rope_theta"] = params.pop("rope_theta")
        cfg["rope_scaling"] = None if params.get("rope_type", "default") == "default" else params
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    return cfg


def greedy(model, prompt):
    ids = list(prompt)
    out, margins, first_logits = [], [], None
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            if first_logits is None:
                first_logits = [float(v) for v in logits.float()]
            top = torch.topk(logits, 2)
            spread = float(logits.max() - logits.mean())
            margin = float(top.values[0] - top.values[1]) / spread
            if margin < MIN_MARGIN:
                break
            margins.append(round(margin, 6))
            out.append(int(top.indices[0]))
            ids.append(out[-1])
    return out, margins, first_logits


def make_case(name, spec, root, seed):
    cls, args, rope_parameters, layout, what = spec
    torch.manual_seed(seed)
    config = make_config(cls, args, rope_parameters)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, seed)
    folder = os.path.join(root, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.to(torch.float16).save_pretrained(folder)
    for extra in os.listdir(folder):
        if extra not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(folder, extra))
    written = write_layout(folder, layout)
    # The reference reads the folder as a user's program would: fp16 weights, computed in fp32.
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    g = torch.Generator().manual_seed(seed + 1)
    prompts = []
    for n in PROMPT_LENGTHS:
        prompt = [int(t) for t in torch.randint(3, VOCAB, (n,), generator=g)]
        out, margins, first_logits = greedy(ref, prompt)
        if len(out) < MIN_KEPT:
            print(f"  {name}: prompt of {n} dropped (near-tie after {len(out)} tokens)")
            continue
        prompts.append(dict(prompt_token_ids=prompt, output_token_ids=out, margins=margins,
                            first_logits=first_logits))
    record = dict(case=name, what=what, layout=layout, transformers=transformers.__version__,
                  torch=torch.__version__, min_margin=MIN_MARGIN, rope=rope_parameters,
                  rope_in_config={k: written[k] for k in ("rope_parameters", "rope_theta", "rope_scaling")
                                  if k in written},
                  prompts=prompts)
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(record, f, indent=1)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    smallest = min((min(p["margins"]) for p in prompts), default=float("nan"))
    print(f"{name:16s} {layout}  prompts {len(prompts)}  tokens {sum(len(p['output_token_ids']) for p in prompts):3d}"
          f"  smallest margin {smallest:.4f}  {size / 1024:.0f} KiB")
    return len(prompts)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "hf_reference"
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    bad = []
    for i, (name, spec) in enumerate(CASES.items()):
        try:
            if make_case(name, spec, root, seed=1000 + i) == 0:
                bad.append(name)
        except Exception as e:  # report every case, then fail
            print(f"{name}: FAILED: {type(e).__name__}: {e}")
            bad.append(name)
    if bad:
        print("cases without references:", ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
