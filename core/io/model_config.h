// The shape and numerics of a Llama-family model, as read from a Hugging Face config.json
// (hf_config.h) or a llama2.c header (llama2c_loader.h). The model code builds from this alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::io {

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3, kMixtral, kQwen2Moe };

// HF class name ("LlamaForCausalLM", ...) and back; nullopt for an unsupported name.
std::string_view architecture_hf_name(Architecture arch);
std::optional<Architecture> parse_architecture(std::string_view hf_name);
// "LlamaForCausalLM, MistralForCausalLM, ..." for error messages.
std::string supported_architectures();

// How RoPE pairs dimensions within a head: HF checkpoints rotate (x[i], x[i + hd/2])
// ("rotate_half"); llama2.c rotates consecutive pairs (x[2i], x[2i+1]).
enum class RopeStyle { kRotateHalf, kInterleaved };

// The RoPE frequency rules of transformers' rope_type. kDynamic (dynamic NTK) changes the
// frequencies only for sequences longer than max_position_embeddings, which Loom never runs, so
// within Loom's context it is the unscaled rule; it is kept to say what the config asked for.
enum class RopeScalingType { kNone, kLinear, kLlama3, kYarn, kDynamic };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;                                   // linear, llama3, yarn, dynamic
  double low_freq_factor = 1.0;                          // llama3
  double high_freq_factor = 4.0;                         // llama3
  std::int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  double beta_fast = 32.0;                               // yarn: ramp bounds, in rotations
  double beta_slow = 1.0;
  bool truncate = true;                                  // yarn: ramp bounds rounded to whole dims
  double attention_factor = 1.0;  // yarn: cos and sin are multiplied by it (resolved from mscale)
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;  // dense FFN width (and Mixtral's per-expert width)
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  std::int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  std::int64_t vocab_size = 0;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  RopeStyle rope_style = RopeStyle::kRotateHalf;
  // Sliding-window attention the checkpoint asks for (0: none). Loom has no sliding-window
  // attention, so it serves contexts up to the window, where the window changes nothing
  // (context_length()).
  std::int64_t sliding_window = 0;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // q/k/v projections have a bias (always for Qwen2/Qwen2-MoE)
  bool o_bias = false;     // the output projection has a bias (Llama/Qwen3 attention_bias)
  bool qk_norm = false;    // per-head RMSNorm of q and k before RoPE (Qwen3)

  // Mixture of experts (num_experts == 0 for dense models).
  std::int64_t num_experts = 0;               // Mixtral num_local_experts, Qwen2-MoE num_experts
  std::int64_t num_experts_per_tok = 0;
  std::int64_t moe_intermediate_size = 0;     // per-expert FFN width (Mixtral: intermediate_size)
  bool norm_topk_prob = false;                // renormalise the top-k weights (Mixtral: true)
  std::int64_t shared_expert_intermediate_size = 0;  // Qwen2-MoE shared expert; 0: none
  std::int64_t decoder_sparse_step = 1;              // Qwen2-MoE: every n-th layer is MoE
  std::vector<std::int64_t> mlp_only_layers;         // Qwen2-MoE: layers kept dense

  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;
  std::string torch_dtype;  // as written in config.json ("bfloat16", ...); "" when absent

  bool is_moe() const { return num_experts > 0; }
  // The longest sequence Loom computes exactly as the checkpoint's own code would:
  // max_position_embeddings, or the sliding window when that is shorter.
  std::int64_t context_length() const;
  // Whether layer `layer` uses experts (Qwen2-MoE may keep some layers dense).
  bool layer_is_moe(std::int64_t layer) const;
  std::int64_t q_size() const { return num_attention_heads * head_dim; }
  std::int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

// "theta 500000, llama3 (factor 8, low_freq_factor 1, ...), rotate-half pairs": the RoPE rule a
// run will use, for `loom inspect` and error messages.
std::string describe_rope(const ModelConfig& config);

// Throws loom::ModelError naming `source` and the offending fields when the config cannot
// describe a model: non-positive sizes, heads not divisible by KV heads, MoE fields missing, ...
void validate_config(const ModelConfig& config, const std::string& source);

}  // namespace loom::io
