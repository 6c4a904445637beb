// The weights of a Llama-family model as fp32 host tensors (see tensor.h), laid out as in the
// Hugging Face checkpoints: every linear weight is [out_features, in_features], y = W x.
// Optional tensors (biases, q/k norms, the experts of a dense layer) are empty Tensors.
#pragma once

#include <vector>

#include "core/io/model_config.h"
#include "core/io/tensor.h"

namespace loom::io {

struct ExpertWeights {
  Tensor w_gate;  // [moe_inter, hidden]
  Tensor w_up;    // [moe_inter, hidden]
  Tensor w_down;  // [hidden, moe_inter]
};

struct LayerWeights {
  Tensor attn_norm;       // [hidden]
  Tensor wq;              // [heads * head_dim, hidden]
  Tensor wk, wv;          // [kv_heads * head_dim, hidden]
  Tensor wo;              // [hidden, heads * head_dim]
  Tensor bq;              // [heads * head_dim] when qkv_bias
  Tensor bk, bv;          // [kv_heads * head_dim] when qkv_bias
  Tensor bo;              // [hidden] when o_bias
  Tensor q_norm, k_norm;  // [head_dim] when qk_norm
  Tensor ffn_norm;        // [hidden]

  // Dense FFN (when !config.layer_is_moe(layer)).
  Tensor w_gate, w_up;  // [intermediate, hidden]
  Tensor w_down;        // [hidden, intermediate]

  // MoE FFN (when config.layer_is_moe(layer)).
  Tensor router;                      // [num_experts, hidden]
  std::vector<ExpertWeights> experts;  // num_experts
  ExpertWeights shared_expert;        // Qwen2-MoE, [shared_inter, hidden] etc., when present
  Tensor shared_expert_gate;          // [1, hidden], Qwen2-MoE, when a shared expert is present
};

struct ModelWeights {
  Tensor token_embedding;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Tensor lm_head;     // [vocab, hidden]; shares token_embedding's data when tied
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
};

}  // namespace loom::io
