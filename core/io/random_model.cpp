#include "core/io/random_model.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/hf_config.h"
#include "core/io/hf_layout.h"
#include "core/io/random_init.h"
#include "core/io/safetensors_writer.h"
#include "loom/error.h"

namespace loom::io {
namespace {

constexpr std::size_t kChunk = 1 << 20;  // values generated per write

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i32:
    case DType::i64: break;  // spec.dtype is a float type (cmd_mkmodel parses it)
  }
  return "float32";
}

std::string shard_name(int index, int count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", index + 1, count);
  return buf;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw Error("cannot write '" + path.string() + "'");
}

void write_shard(const std::filesystem::path& path, const std::vector<const HfTensorSlot*>& slots,
                 const RandomModelSpec& spec) {
  std::vector<TensorHeader> headers;
  for (const HfTensorSlot* s : slots) headers.push_back({s->name, spec.dtype, s->shape});
  SafetensorsWriter writer(path, std::move(headers), {{"format", "pt"}});
  std::vector<float> buffer;
  for (const HfTensorSlot* s : slots) {
    const std::uint64_t stream = random_stream(spec.seed, s->name);
    const float std = tensor_init_std(spec, s->name, s->role);
    const auto numel = static_cast<std::uint64_t>(*shape_numel(s->shape));
    for (std::uint64_t begin = 0; begin < numel; begin += kChunk) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, numel - begin));
      buffer.resize(n);
      for (std::size_t i = 0; i < n; ++i) buffer[i] = random_init_value(stream, s->role, std, begin + i);
      writer.write_fp32(buffer);
    }
  }
  writer.finish();
}

}  // namespace

float tensor_init_std(const RandomModelSpec& spec, const std::string& name, TensorRole role) {
  const bool in_a_layer = name.rfind("model.layers.", 0) == 0 && role != TensorRole::kNorm;
  return in_a_layer && spec.layer_std >= 0.0f ? spec.layer_std : spec.init_std;
}

std::uint64_t random_model_bytes(const ModelConfig& config, DType dtype) {
  validate_config(config, "random model spec");
  ModelWeights scratch;
  unsigned __int128 total = 0;  // absurd shapes overflow 64 bits: saturate instead
  for (const HfTensorSlot& s : hf_tensor_slots(config, scratch)) {
    const auto numel = shape_numel(s.shape);
    if (!numel) return UINT64_MAX;
    total += static_cast<unsigned __int128>(*numel) * dtype_size(dtype);
  }
  return total > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(total);
}

void write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir) {
  ModelConfig config = spec.config;
  config.torch_dtype = torch_dtype_name(spec.dtype);
  config.rope_style = RopeStyle::kRotateHalf;
  validate_config(config, "random model spec for '" + dir.string() + "'");
  if (spec.num_shards < 1)
    throw ModelError("random model spec: num_shards must be at least 1, found " + std::to_string(spec.num_shards));
  if (!spec.tokenizer_model.empty() && !std::filesystem::is_regular_file(spec.tokenizer_model))
    throw ModelError("random model spec: tokenizer '" + spec.tokenizer_model.string() + "' does not exist");

  std::filesystem::create_directories(dir);
  write_text(dir / "config.json", to_hf_config_json(config).dump(2) + "\n");

  ModelWeights scratch;
  const std::vector<HfTensorSlot> slots = hf_tensor_slots(config, scratch);
  std::vector<std::uint64_t> bytes;
  std::uint64_t total = 0;
  for (const HfTensorSlot& s : slots) {
    bytes.push_back(static_cast<std::uint64_t>(*shape_numel(s.shape)) * dtype_size(spec.dtype));
    total += bytes.back();
  }

  if (spec.num_shards == 1) {
    std::vector<const HfTensorSlot*> all;
    for (const HfTensorSlot& s : slots) all.push_back(&s);
    write_shard(dir / "model.safetensors", all, spec);
  } else {
    // Tensor t goes to shard floor(start_byte(t) * N / total): contiguous, about equal shards.
    const auto n = static_cast<std::uint64_t>(spec.num_shards);
    std::vector<std::vector<const HfTensorSlot*>> shards;
    std::uint64_t start = 0, last = UINT64_MAX;
    for (std::size_t t = 0; t < slots.size(); ++t) {
      const std::uint64_t shard = total == 0 ? 0 : std::min<std::uint64_t>(n - 1, static_cast<std::uint64_t>(
                                                        static_cast<unsigned __int128>(start) * n / total));
      if (shard != last) shards.emplace_back();
      last = shard;
      shards.back().push_back(&slots[t]);
      start += bytes[t];
    }
    nlohmann::json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = nlohmann::json::object();
    const int count = static_cast<int>(shards.size());
    for (int i = 0; i < count; ++i) {
      const std::string name = shard_name(i, count);
      for (const HfTensorSlot* s : shards[static_cast<std::size_t>(i)]) index["weight_map"][s->name] = name;
      write_shard(dir / name, shards[static_cast<std::size_t>(i)], spec);
    }
    write_text(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  if (!spec.tokenizer_model.empty()) {
    // Kept under the name the loader looks for: tokenizer.json for a Hugging Face tokenizer file.
    const char* name = spec.tokenizer_model.extension() == ".json" ? "tokenizer.json" : "tokenizer.model";
    std::filesystem::copy_file(spec.tokenizer_model, dir / name, std::filesystem::copy_options::overwrite_existing);
  }
}

ModelConfig tiny_config(Architecture arch) {
  ModelConfig c;
  c.architecture = arch;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 256;
  c.max_position_embeddings = 256;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  switch (arch) {
    case Architecture::kLlama:
    case Architecture::kMistral:
      break;
    case Architecture::kQwen2:
      c.qkv_bias = true;
      break;
    case Architecture::kQwen3:
      c.qk_norm = true;
      c.head_dim = 32;
      break;
    case Architecture::kMixtral:
      c.num_experts = 4;
      c.num_experts_per_tok = 2;
      c.moe_intermediate_size = c.intermediate_size;
      c.norm_topk_prob = true;
      break;
    case Architecture::kQwen2Moe:
      c.qkv_bias = true;
      c.num_experts = 4;
      c.num_experts_per_tok = 2;
      c.moe_intermediate_size = 32;
      c.shared_expert_intermediate_size = 64;
      break;
  }
  return c;
}

}  // namespace loom::io
