// The weights of a Llama-family model as fp32 host tensors (see tensor.h), laid out as in the
// Hugging Face checkpoints: every linear weight is [out_features, in_features], y = W x.
// Optional tensors (biases, q/k norms, the experts of a dense layer) are empty Tensors.
#pragma once

#include <cstdint>
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

// Number of weights (a tied lm head counted once).
inline std::uint64_t num_parameters(const ModelWeights& w) {
  auto n = [](const Tensor& t) { return static_cast<std::uint64_t>(t.numel()); };
  auto expert = [&](const ExpertWeights& e) { return n(e.w_gate) + n(e.w_up) + n(e.w_down); };
  std::uint64_t total = n(w.token_embedding) + n(w.final_norm);
  if (w.lm_head.data() != w.token_embedding.data()) total += n(w.lm_head);
  for (const auto& l : w.layers) {
    for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm, &l.k_norm,
                            &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down, &l.router, &l.shared_expert_gate})
      total += n(*t);
    for (const auto& e : l.experts) total += expert(e);
    total += expert(l.shared_expert);
  }
  return total;
}

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
};

}  // namespace loom::io
