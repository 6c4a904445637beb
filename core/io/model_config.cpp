#include "core/io/model_config.h"

#include <algorithm>
#include <array>
#include <sstream>
#include <utility>

#include "loom/error.h"

namespace loom::io {
namespace {

constexpr std::array<std::pair<Architecture, std::string_view>, 6> kArchitectures{{
    {Architecture::kLlama, "LlamaForCausalLM"},
    {Architecture::kMistral, "MistralForCausalLM"},
    {Architecture::kQwen2, "Qwen2ForCausalLM"},
    {Architecture::kQwen3, "Qwen3ForCausalLM"},
    {Architecture::kMixtral, "MixtralForCausalLM"},
    {Architecture::kQwen2Moe, "Qwen2MoeForCausalLM"},
}};

// Sizes above this are refused: no model comes near, and the engine multiplies two sizes
// (q_size, kv_size, tensor shapes) in 64 bits.
constexpr std::int64_t kMaxSize = INT32_MAX;

// Whether some layer has a dense FFN, without visiting every layer: a corrupt config may claim
// billions of them.
bool has_dense_layer(const ModelConfig& c) {
  if (!c.is_moe() || c.decoder_sparse_step <= 0) return true;  // layer_is_moe() is false for all
  if (c.decoder_sparse_step > 1) return true;                  // layer 0: (0 + 1) % step != 0
  return std::any_of(c.mlp_only_layers.begin(), c.mlp_only_layers.end(),
                     [&](std::int64_t l) { return l >= 0 && l < c.num_hidden_layers; });
}

}  // namespace

std::string_view architecture_hf_name(Architecture arch) {
  for (const auto& [a, name] : kArchitectures)
    if (a == arch) return name;
  return "?";
}

std::optional<Architecture> parse_architecture(std::string_view hf_name) {
  for (const auto& [a, name] : kArchitectures)
    if (name == hf_name) return a;
  return std::nullopt;
}

std::string supported_architectures() {
  std::string s;
  for (const auto& [a, name] : kArchitectures) {
    if (!s.empty()) s += ", ";
    s += name;
  }
  return s;
}

bool ModelConfig::layer_is_moe(std::int64_t layer) const {
  if (!is_moe()) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end())
    return false;
  return decoder_sparse_step > 0 && (layer + 1) % decoder_sparse_step == 0;
}

std::int64_t ModelConfig::context_length() const {
  return sliding_window > 0 ? std::min(max_position_embeddings, sliding_window) : max_position_embeddings;
}

std::string describe_rope(const ModelConfig& c) {
  std::ostringstream out;
  out.precision(10);  // theta 1000000, not 1e+06
  const RopeScaling& s = c.rope_scaling;
  out << "theta " << c.rope_theta;
  switch (s.type) {
    case RopeScalingType::kNone: out << ", no scaling"; break;
    case RopeScalingType::kLinear: out << ", linear scaling (factor " << s.factor << ")"; break;
    case RopeScalingType::kLlama3:
      out << ", llama3 scaling (factor " << s.factor << ", low_freq_factor " << s.low_freq_factor
          << ", high_freq_factor " << s.high_freq_factor << ", original_max_position_embeddings "
          << s.original_max_position_embeddings << ")";
      break;
    case RopeScalingType::kYarn:
      out << ", yarn scaling (factor " << s.factor << ", original_max_position_embeddings "
          << s.original_max_position_embeddings << ", beta_fast " << s.beta_fast << ", beta_slow " << s.beta_slow
          << ", attention_factor " << s.attention_factor << (s.truncate ? "" : ", not truncated") << ")";
      break;
    case RopeScalingType::kDynamic:
      out << ", dynamic scaling (factor " << s.factor << "; unscaled within the " << c.max_position_embeddings
          << " positions Loom serves)";
      break;
  }
  out << (c.rope_style == RopeStyle::kInterleaved ? ", interleaved pairs" : ", rotate-half pairs");
  return out.str();
}

void validate_config(const ModelConfig& c, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw ModelError("model config '" + source + "': " + what);
  };
  auto positive = [&](const char* field, std::int64_t v) {
    if (v <= 0) fail(std::string(field) + " must be positive, found " + std::to_string(v));
    if (v > kMaxSize)
      fail(std::string(field) + " is " + std::to_string(v) + ", more than any model has (at most " +
           std::to_string(kMaxSize) + "); the config is corrupt");
  };
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("head_dim", c.head_dim);
  positive("vocab_size", c.vocab_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("num_attention_heads (" + std::to_string(c.num_attention_heads) +
         ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  if (c.head_dim % 2 != 0) fail("head_dim must be even for RoPE, found " + std::to_string(c.head_dim));
  if (!(c.rms_norm_eps > 0)) fail("rms_norm_eps must be positive");
  if (!(c.rope_theta > 0)) fail("rope_theta must be positive");
  if (c.rope_scaling.type != RopeScalingType::kNone && !(c.rope_scaling.factor > 0))
    fail("rope_scaling.factor must be positive");
  if (c.rope_scaling.type == RopeScalingType::kYarn && !(c.rope_scaling.attention_factor > 0))
    fail("rope_scaling.attention_factor must be positive");
  if (c.sliding_window < 0) fail("sliding_window must not be negative");
  if (has_dense_layer(c)) positive("intermediate_size", c.intermediate_size);
  const bool moe_arch = c.architecture == Architecture::kMixtral || c.architecture == Architecture::kQwen2Moe;
  if (moe_arch) {
    positive("number of experts (num_local_experts / num_experts)", c.num_experts);
    positive("num_experts_per_tok", c.num_experts_per_tok);
    positive("moe_intermediate_size", c.moe_intermediate_size);
    if (c.num_experts_per_tok > c.num_experts)
      fail("num_experts_per_tok (" + std::to_string(c.num_experts_per_tok) +
           ") exceeds the number of experts (" + std::to_string(c.num_experts) + ")");
    if (c.shared_expert_intermediate_size < 0) fail("shared_expert_intermediate_size must not be negative");
    if (c.shared_expert_intermediate_size > 0)
      positive("shared_expert_intermediate_size", c.shared_expert_intermediate_size);
  } else if (c.num_experts != 0) {
    fail(std::string(architecture_hf_name(c.architecture)) + " is a dense architecture but the config has " +
         std::to_string(c.num_experts) + " experts");
  }
}

}  // namespace loom::io
