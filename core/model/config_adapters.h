// The model config as the SDK and the kernels take it, shared by the CPU and CUDA runners.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "core/io/model_config.h"
#include "loom/attention.h"
#include "loom/engine_info.h"
#include "loom/kernels/cpu/rope.h"

namespace loom {

inline sdk::ModelShape shape_of(const io::ModelConfig& c, std::uint32_t kv_bytes_per_element) {
  sdk::ModelShape s;
  s.num_layers = static_cast<std::uint32_t>(c.num_hidden_layers);
  s.hidden_size = static_cast<std::uint32_t>(c.hidden_size);
  s.num_heads = static_cast<std::uint32_t>(c.num_attention_heads);
  s.num_kv_heads = static_cast<std::uint32_t>(c.num_key_value_heads);
  s.head_dim = static_cast<std::uint32_t>(c.head_dim);
  s.vocab_size = static_cast<std::uint32_t>(c.vocab_size);
  s.max_position = static_cast<std::uint32_t>(c.context_length());
  s.num_experts = static_cast<std::uint32_t>(c.num_experts);
  s.experts_per_token = static_cast<std::uint32_t>(c.num_experts_per_tok);
  s.kv_bytes_per_element = kv_bytes_per_element;
  return s;
}

inline kernels::cpu::RopeScaling rope_scaling_of(const io::RopeScaling& s) {
  kernels::cpu::RopeScaling out;
  out.factor = s.factor;
  out.low_freq_factor = s.low_freq_factor;
  out.high_freq_factor = s.high_freq_factor;
  out.original_max_position = static_cast<double>(s.original_max_position_embeddings);
  out.beta_fast = s.beta_fast;
  out.beta_slow = s.beta_slow;
  out.truncate = s.truncate;
  out.attention_factor = s.type == io::RopeScalingType::kYarn ? s.attention_factor : 1.0;
  using Type = kernels::cpu::RopeScaling::Type;
  switch (s.type) {
    case io::RopeScalingType::kLinear: out.type = Type::linear; break;
    case io::RopeScalingType::kLlama3: out.type = Type::llama3; break;
    case io::RopeScalingType::kYarn: out.type = Type::yarn; break;
    // Dynamic NTK only rescales past max_position_embeddings, which Loom never reaches.
    case io::RopeScalingType::kDynamic:
    case io::RopeScalingType::kNone: out.type = Type::none; break;
  }
  return out;
}

// The step's layout as the attention plugin's prepare() takes it; scale 1/sqrt(head_dim).
inline sdk::AttentionBatch attention_batch_of(const io::ModelConfig& c, std::span<const sdk::AttentionSeq> seqs,
                                              std::uint32_t num_tokens) {
  sdk::AttentionBatch layout;
  layout.seqs = seqs;
  layout.num_tokens = num_tokens;
  layout.num_heads = static_cast<std::uint32_t>(c.num_attention_heads);
  layout.num_kv_heads = static_cast<std::uint32_t>(c.num_key_value_heads);
  layout.head_dim = static_cast<std::uint32_t>(c.head_dim);
  layout.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  return layout;
}

}  // namespace loom
