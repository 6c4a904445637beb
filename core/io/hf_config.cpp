#include "core/io/hf_config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "core/common/json_depth.h"
#include "core/io/hf_rope.h"
#include "loom/error.h"

namespace loom::io {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError("model config '" + source_ + "': " + what); }
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& at(const char* key) const { return j_.at(key); }

  std::int64_t integer(const char* key) const {
    if (!has(key)) fail(std::string("required field \"") + key + "\" is missing");
    return integer_of(key, j_.at(key));
  }
  std::int64_t integer(const char* key, std::int64_t fallback) const {
    return has(key) ? integer_of(key, j_.at(key)) : fallback;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number()) fail(std::string("field \"") + key + "\" must be a number, found " + v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(std::string("field \"") + key + "\" must be true or false, found " + v.dump());
    return v.get<bool>();
  }
  std::int64_t integer_of(const std::string& key, const json& v) const {
    if (!v.is_number_integer()) fail("field \"" + key + "\" must be an integer, found " + v.dump());
    return v.get<std::int64_t>();
  }

 private:
  const json& j_;
  const std::string& source_;
};

// transformers' default rope_theta of each architecture's config class.
double default_rope_theta(Architecture arch) { return arch == Architecture::kMixtral ? 1e6 : 10000.0; }

// The sliding window the checkpoint's own code applies to some layer, 0 when none. Mistral and
// Mixtral apply "sliding_window" to every layer when it is set; the Qwen families only with
// "use_sliding_window", to the layers "layer_types" marks (or, without it, the layers their
// config classes derive from "max_window_layers").
std::int64_t sliding_window_of(const Reader& r, const ModelConfig& c) {
  const std::int64_t window = r.integer("sliding_window", 0);
  if (window < 0) r.fail("\"sliding_window\" must not be negative, found " + std::to_string(window));
  if (c.architecture == Architecture::kLlama) return 0;  // LlamaConfig has no sliding window
  if (c.architecture == Architecture::kMistral || c.architecture == Architecture::kMixtral) return window;
  const bool enabled = r.boolean("use_sliding_window", false);
  bool any_sliding = false;
  if (r.has("layer_types")) {
    if (!r.at("layer_types").is_array()) r.fail("\"layer_types\" must be a list of layer kinds");
    for (const auto& kind : r.at("layer_types")) {
      if (kind == "sliding_attention")
        any_sliding = true;
      else if (kind != "full_attention")
        r.fail("\"layer_types\" holds " + kind.dump(-1).substr(0, 40) +
               "; Loom knows \"full_attention\" and \"sliding_attention\"");
    }
    if (any_sliding && !enabled)
      r.fail(
          "\"layer_types\" marks sliding-window layers but \"use_sliding_window\" is not true; the config "
          "contradicts itself");
  } else if (enabled) {
    const std::int64_t full_layers = r.integer("max_window_layers", 28);
    any_sliding = c.architecture == Architecture::kQwen2Moe ? full_layers > 0 : full_layers < c.num_hidden_layers;
  }
  return enabled && any_sliding ? window : 0;
}

// Keys that change the forward pass in ways Loom does not implement.
void refuse_unsupported(const Reader& r, Architecture arch) {
  if (r.has("hidden_act")) {
    const json& act = r.at("hidden_act");
    if (!act.is_string() || (act != "silu" && act != "swish"))
      r.fail("\"hidden_act\" = " + act.dump(-1).substr(0, 40) +
             " is not supported; Loom's FFN is SiLU-gated (\"silu\")");
  }
  if (r.boolean("mlp_bias", false)) r.fail("\"mlp_bias\" = true is not supported: Loom's FFN projections have no bias");
  const bool takes_attention_bias = arch == Architecture::kLlama || arch == Architecture::kQwen3;
  if (!takes_attention_bias && r.boolean("attention_bias", false))
    r.fail("\"attention_bias\" = true, but " + std::string(architecture_hf_name(arch)) +
           " has no such option (transformers would ignore the biases); the checkpoint is not what its "
           "architecture says");
  if (r.has("quantization_config"))
    r.fail(
        "\"quantization_config\" is set: quantized checkpoints are not supported (Loom reads fp32, fp16 and "
        "bf16 weights)");
}

}  // namespace

ModelConfig parse_hf_config(const json& j, const std::string& source) {
  const Reader r(j, source);
  if (!j.is_object()) r.fail("is not a JSON object");
  if (!r.has("architectures") || !r.at("architectures").is_array() || r.at("architectures").empty() ||
      !r.at("architectures")[0].is_string())
    r.fail("\"architectures\" must be a non-empty list of names (supported: " + supported_architectures() + ")");
  const std::string arch_name = r.at("architectures")[0].get<std::string>();
  const auto arch = parse_architecture(arch_name);
  if (!arch) r.fail("architecture \"" + arch_name + "\" is not supported; supported are " + supported_architectures());

  ModelConfig c;
  c.architecture = *arch;
  c.hidden_size = r.integer("hidden_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  c.head_dim = r.integer("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.vocab_size = r.integer("vocab_size");
  c.intermediate_size = r.integer("intermediate_size", 0);
  c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  const HfRope rope = read_hf_rope(j, default_rope_theta(c.architecture), c.max_position_embeddings, source);
  c.rope_theta = rope.theta;
  c.rope_scaling = rope.scaling;
  c.rope_style = RopeStyle::kRotateHalf;
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  refuse_unsupported(r, c.architecture);

  switch (c.architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
      break;
    case Architecture::kQwen2:
      c.qkv_bias = true;
      break;
    case Architecture::kQwen2Moe:
      c.qkv_bias = r.boolean("qkv_bias", true);
      break;
    case Architecture::kMistral:
    case Architecture::kMixtral:
      break;
  }
  c.sliding_window = sliding_window_of(r, c);
  c.qk_norm = c.architecture == Architecture::kQwen3;
  if (c.architecture == Architecture::kMixtral) {
    c.num_experts = r.integer("num_local_experts", 8);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", 2);
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;
  } else if (c.architecture == Architecture::kQwen2Moe) {
    c.num_experts = r.integer("num_experts", 60);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", 4);
    c.moe_intermediate_size = r.integer("moe_intermediate_size", 1408);
    c.norm_topk_prob = r.boolean("norm_topk_prob", false);
    c.shared_expert_intermediate_size = r.integer("shared_expert_intermediate_size", 0);
    c.decoder_sparse_step = r.integer("decoder_sparse_step", 1);
    if (r.has("mlp_only_layers")) {
      if (!r.at("mlp_only_layers").is_array()) r.fail("\"mlp_only_layers\" must be a list of layer numbers");
      for (const json& v : r.at("mlp_only_layers")) c.mlp_only_layers.push_back(r.integer_of("mlp_only_layers", v));
    }
  }

  if (r.has("bos_token_id")) c.bos_token_id = r.integer("bos_token_id");
  if (r.has("eos_token_id")) {
    const json& eos = r.at("eos_token_id");
    if (eos.is_array()) {
      for (const json& v : eos) c.eos_token_ids.push_back(r.integer_of("eos_token_id", v));
    } else {
      c.eos_token_ids.push_back(r.integer("eos_token_id"));
    }
  }
  // transformers 5 writes "dtype", transformers 4 "torch_dtype".
  for (const char* key : {"torch_dtype", "dtype"})
    if (r.has(key) && r.at(key).is_string()) c.torch_dtype = r.at(key).get<std::string>();
  validate_config(c, source);
  return c;
}

ModelConfig parse_hf_config_text(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth)
        throw ModelError("model config '" + source + "' nests lists and objects deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels; it is not a config.json");
      return true;
    });
  } catch (const json::exception& e) {
    throw ModelError("model config '" + source + "' is not valid JSON (" + e.what() + ")");
  }
  return parse_hf_config(j, source);
}

ModelConfig read_hf_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ModelError("cannot read model config '" + path.string() +
                     "' (a Hugging Face model directory needs config.json next to its *.safetensors)");
  std::stringstream text;
  text << in.rdbuf();
  return parse_hf_config_text(text.str(), path.string());
}

json to_hf_config_json(const ModelConfig& c) {
  static constexpr const char* kModelType[] = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe"};
  json j;
  j["architectures"] = {std::string(architecture_hf_name(c.architecture))};
  j["model_type"] = kModelType[static_cast<int>(c.architecture)];
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_parameters"] = hf_rope_parameters(c.rope_theta, c.rope_scaling);
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.architecture == Architecture::kLlama || c.architecture == Architecture::kQwen3)
    j["attention_bias"] = c.qkv_bias;
  if (c.architecture == Architecture::kMistral || c.architecture == Architecture::kMixtral) {
    j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  } else if (c.architecture != Architecture::kLlama && c.sliding_window > 0) {
    j["use_sliding_window"] = true;
    j["sliding_window"] = c.sliding_window;
    j["max_window_layers"] = c.architecture == Architecture::kQwen2Moe ? c.num_hidden_layers : 0;
  }
  if (c.architecture == Architecture::kQwen2Moe) j["qkv_bias"] = c.qkv_bias;
  if (c.architecture == Architecture::kMixtral) {
    j["num_local_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
  } else if (c.architecture == Architecture::kQwen2Moe) {
    j["num_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
    j["decoder_sparse_step"] = c.decoder_sparse_step;
    j["mlp_only_layers"] = c.mlp_only_layers;
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1)
    j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty())
    j["eos_token_id"] = c.eos_token_ids;
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  return j;
}

}  // namespace loom::io
