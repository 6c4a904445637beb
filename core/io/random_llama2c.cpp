#include "core/io/random_llama2c.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/hf_layout.h"
#include "core/io/llama2c_loader.h"
#include "core/io/random_init.h"
#include "loom/error.h"

namespace loom::io {

namespace {

// The llama2.c header of `c`, after checking the format can hold it.
Llama2cHeader checked_header(const ModelConfig& c, const std::string& source) {
  validate_config(c, source);
  if (c.architecture != Architecture::kLlama || c.qkv_bias || c.o_bias || c.qk_norm || c.is_moe() ||
      c.head_dim * c.num_attention_heads != c.hidden_size)
    throw ModelError(source + ": the llama2.c format holds only plain Llama models "
                     "(no biases, no qk_norm, no experts, head_dim = hidden_size / heads)");
  if (c.hidden_size > INT32_MAX || c.intermediate_size > INT32_MAX || c.vocab_size > INT32_MAX ||
      c.max_position_embeddings > INT32_MAX || c.num_hidden_layers > INT32_MAX)
    throw ModelError(source + ": a size exceeds the int32 header of the llama2.c format");
  return llama2c_header(c);
}

}  // namespace

std::uint64_t random_llama2c_bytes(const ModelConfig& c) {
  const std::string source = "llama2.c random model";
  return llama2c_file_size(checked_header(c, source), source);
}

void write_random_llama2c(const ModelConfig& c, std::uint64_t seed, const std::filesystem::path& path,
                          float init_std) {
  const std::string source = "llama2.c random model '" + path.string() + "'";
  const Llama2cHeader header = checked_header(c, source);
  const std::uint64_t expected = llama2c_file_size(header, source);

  ModelWeights scratch;
  std::map<std::string, HfTensorSlot> slots;
  for (HfTensorSlot& s : hf_tensor_slots(c, scratch)) slots.emplace(s.name, std::move(s));

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!out) throw Error("cannot create '" + path.string() + "': " + std::strerror(errno));
  std::setvbuf(out.get(), nullptr, _IOFBF, 1 << 22);
  std::uint64_t written = 0;
  auto put = [&](const void* data, std::size_t bytes) {
    if (std::fwrite(data, 1, bytes, out.get()) != bytes)
      throw Error("writing '" + path.string() + "' failed: " + std::strerror(errno) + " (disk full?)");
    written += bytes;
  };
  std::vector<float> buffer;
  auto put_tensor = [&](const std::string& name) {
    const HfTensorSlot& s = slots.at(name);
    const std::uint64_t stream = random_stream(seed, name);
    const auto numel = static_cast<std::uint64_t>(*shape_numel(s.shape));
    constexpr std::uint64_t kChunk = 1 << 20;
    for (std::uint64_t begin = 0; begin < numel; begin += kChunk) {
      buffer.resize(static_cast<std::size_t>(std::min(kChunk, numel - begin)));
      for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = random_init_value(stream, s.role, init_std, begin + i);
      put(buffer.data(), buffer.size() * sizeof(float));
    }
  };
  auto per_layer = [&](const char* suffix) {
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) put_tensor("model.layers." + std::to_string(l) + "." + suffix);
  };

  put(&header, sizeof header);
  put_tensor("model.embed_tokens.weight");
  per_layer("input_layernorm.weight");
  per_layer("self_attn.q_proj.weight");
  per_layer("self_attn.k_proj.weight");
  per_layer("self_attn.v_proj.weight");
  per_layer("self_attn.o_proj.weight");
  per_layer("post_attention_layernorm.weight");
  per_layer("mlp.gate_proj.weight");
  per_layer("mlp.down_proj.weight");
  per_layer("mlp.up_proj.weight");
  put_tensor("model.norm.weight");
  const std::vector<float> zeros(static_cast<std::size_t>(c.head_dim), 0.0f);  // 2 tables of hd/2
  for (std::int64_t p = 0; p < c.max_position_embeddings; ++p) put(zeros.data(), zeros.size() * sizeof(float));
  if (!c.tie_word_embeddings) put_tensor("lm_head.weight");
  if (written != expected)
    throw std::logic_error("write_random_llama2c wrote " + std::to_string(written) + " bytes, expected " +
                           std::to_string(expected));
  std::FILE* f = out.release();
  if (std::fflush(f) != 0 || std::fclose(f) != 0)
    throw Error("writing '" + path.string() + "' failed: " + std::strerror(errno));
}

}  // namespace loom::io
