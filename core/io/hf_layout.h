// The Hugging Face tensor names and shapes of each architecture, in one place: the loader reads
// these tensors and the random-model generator writes them.
//
//   model.embed_tokens.weight, model.norm.weight, lm_head.weight (absent when tied)
//   model.layers.N.input_layernorm.weight, .post_attention_layernorm.weight
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight (+ .bias), .self_attn.{q,k}_norm.weight
//   dense:    model.layers.N.mlp.{gate,up,down}_proj.weight
//   Mixtral:  model.layers.N.block_sparse_moe.gate.weight, .experts.E.{w1 gate, w2 down, w3 up}.weight
//   Qwen2-MoE: model.layers.N.mlp.gate.weight, .mlp.experts.E.{gate,up,down}_proj.weight,
//             .mlp.shared_expert.{gate,up,down}_proj.weight, .mlp.shared_expert_gate.weight
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/io/model_config.h"
#include "core/io/model_weights.h"

namespace loom::io {

// What a tensor is, so a generator can initialise it sensibly (norm weights near 1).
enum class TensorRole { kWeight, kBias, kNorm };

struct HfTensorSlot {
  std::string name;
  std::vector<std::int64_t> shape;
  TensorRole role = TensorRole::kWeight;
  Tensor* destination = nullptr;  // the field of the ModelWeights passed in
};

// Every tensor the checkpoint of `config` holds, in checkpoint order; each slot's destination is
// the matching field of `weights`. weights.layers (and their experts) are resized to the config
// when their sizes differ and left as they are otherwise, so the slots of loaded weights point at
// the loaded tensors. lm_head is listed only when the embeddings are not tied.
std::vector<HfTensorSlot> hf_tensor_slots(const ModelConfig& config, ModelWeights& weights);

}  // namespace loom::io
