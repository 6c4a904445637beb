#include "core/io/hf_layout.h"

namespace loom::io {

std::vector<HfTensorSlot> hf_tensor_slots(const ModelConfig& c, ModelWeights& w) {
  std::vector<HfTensorSlot> slots;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, TensorRole role, Tensor& dst) {
    slots.push_back({std::move(name), std::move(shape), role, &dst});
  };
  constexpr TensorRole kW = TensorRole::kWeight, kB = TensorRole::kBias, kN = TensorRole::kNorm;
  const std::int64_t h = c.hidden_size;

  add("model.embed_tokens.weight", {c.vocab_size, h}, kW, w.token_embedding);
  if (w.layers.size() != static_cast<std::size_t>(c.num_hidden_layers))
    w.layers.assign(static_cast<std::size_t>(c.num_hidden_layers), LayerWeights{});
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {h}, kN, L.attn_norm);
    add(p + "self_attn.q_proj.weight", {c.q_size(), h}, kW, L.wq);
    add(p + "self_attn.k_proj.weight", {c.kv_size(), h}, kW, L.wk);
    add(p + "self_attn.v_proj.weight", {c.kv_size(), h}, kW, L.wv);
    add(p + "self_attn.o_proj.weight", {h, c.q_size()}, kW, L.wo);
    if (c.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {c.q_size()}, kB, L.bq);
      add(p + "self_attn.k_proj.bias", {c.kv_size()}, kB, L.bk);
      add(p + "self_attn.v_proj.bias", {c.kv_size()}, kB, L.bv);
    }
    if (c.o_bias) add(p + "self_attn.o_proj.bias", {h}, kB, L.bo);
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {c.head_dim}, kN, L.q_norm);
      add(p + "self_attn.k_norm.weight", {c.head_dim}, kN, L.k_norm);
    }
    add(p + "post_attention_layernorm.weight", {h}, kN, L.ffn_norm);

    if (!c.layer_is_moe(l)) {
      add(p + "mlp.gate_proj.weight", {c.intermediate_size, h}, kW, L.w_gate);
      add(p + "mlp.up_proj.weight", {c.intermediate_size, h}, kW, L.w_up);
      add(p + "mlp.down_proj.weight", {h, c.intermediate_size}, kW, L.w_down);
      continue;
    }
    const std::int64_t m = c.moe_intermediate_size;
    if (L.experts.size() != static_cast<std::size_t>(c.num_experts))
      L.experts.assign(static_cast<std::size_t>(c.num_experts), ExpertWeights{});
    if (c.architecture == Architecture::kMixtral) {
      add(p + "block_sparse_moe.gate.weight", {c.num_experts, h}, kW, L.router);
      for (std::int64_t e = 0; e < c.num_experts; ++e) {
        ExpertWeights& E = L.experts[static_cast<std::size_t>(e)];
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        add(q + "w1.weight", {m, h}, kW, E.w_gate);
        add(q + "w2.weight", {h, m}, kW, E.w_down);
        add(q + "w3.weight", {m, h}, kW, E.w_up);
      }
    } else {
      add(p + "mlp.gate.weight", {c.num_experts, h}, kW, L.router);
      for (std::int64_t e = 0; e < c.num_experts; ++e) {
        ExpertWeights& E = L.experts[static_cast<std::size_t>(e)];
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        add(q + "gate_proj.weight", {m, h}, kW, E.w_gate);
        add(q + "up_proj.weight", {m, h}, kW, E.w_up);
        add(q + "down_proj.weight", {h, m}, kW, E.w_down);
      }
      const std::int64_t s = c.shared_expert_intermediate_size;
      if (s > 0) {
        add(p + "mlp.shared_expert.gate_proj.weight", {s, h}, kW, L.shared_expert.w_gate);
        add(p + "mlp.shared_expert.up_proj.weight", {s, h}, kW, L.shared_expert.w_up);
        add(p + "mlp.shared_expert.down_proj.weight", {h, s}, kW, L.shared_expert.w_down);
        add(p + "mlp.shared_expert_gate.weight", {1, h}, kW, L.shared_expert_gate);
      }
    }
  }
  add("model.norm.weight", {h}, kN, w.final_norm);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, h}, kW, w.lm_head);
  return slots;
}

}  // namespace loom::io
