#include "core/io/llama2c_loader.h"

#include <cstring>
#include <memory>

#include "core/io/mapped_file.h"
#include "core/io/model_loader.h"
#include "loom/error.h"

namespace loom::io {
namespace {

std::string header_string(const Llama2cHeader& h) {
  return "dim=" + std::to_string(h.dim) + ", hidden_dim=" + std::to_string(h.hidden_dim) +
         ", n_layers=" + std::to_string(h.n_layers) + ", n_heads=" + std::to_string(h.n_heads) +
         ", n_kv_heads=" + std::to_string(h.n_kv_heads) + ", vocab_size=" + std::to_string(h.vocab_size) +
         ", seq_len=" + std::to_string(h.seq_len);
}

}  // namespace

std::uint64_t llama2c_file_size(const Llama2cHeader& h, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw ModelError("llama2.c file '" + source + "': " + what + " (header: " + header_string(h) +
                     "); is it a llama2.c legacy (version 0) checkpoint?");
  };
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 ||
      h.vocab_size == 0 || h.vocab_size == INT32_MIN || h.seq_len <= 0)
    fail("header has a non-positive size");
  if (h.dim % h.n_heads != 0) fail("dim is not a multiple of n_heads");
  if (h.n_heads % h.n_kv_heads != 0) fail("n_heads is not a multiple of n_kv_heads");
  if ((h.dim / h.n_heads) % 2 != 0) fail("head size dim / n_heads is odd");
  const std::uint64_t dim = static_cast<std::uint64_t>(h.dim), hidden = static_cast<std::uint64_t>(h.hidden_dim);
  const std::uint64_t layers = static_cast<std::uint64_t>(h.n_layers);
  const std::uint64_t vocab = static_cast<std::uint64_t>(h.vocab_size < 0 ? -static_cast<std::int64_t>(h.vocab_size) : h.vocab_size);
  const std::uint64_t head = dim / static_cast<std::uint64_t>(h.n_heads);
  const std::uint64_t kv_dim = head * static_cast<std::uint64_t>(h.n_kv_heads);
  // Every factor is below 2^31 and there are at most three, so the sum of products is far from
  // overflowing only if computed in 128 bits; reject anything that does not fit 64.
  unsigned __int128 floats = 0;
  floats += static_cast<unsigned __int128>(vocab) * dim;                   // embedding
  floats += static_cast<unsigned __int128>(layers) * dim * 2;              // two norms
  floats += static_cast<unsigned __int128>(layers) * dim * dim * 2;        // wq, wo
  floats += static_cast<unsigned __int128>(layers) * kv_dim * dim * 2;     // wk, wv
  floats += static_cast<unsigned __int128>(layers) * hidden * dim * 3;     // w1, w2, w3
  floats += dim;                                                            // final norm
  floats += static_cast<unsigned __int128>(h.seq_len) * head;              // 2 tables of head/2
  if (h.vocab_size < 0) floats += static_cast<unsigned __int128>(vocab) * dim;
  const unsigned __int128 bytes = floats * 4 + kLlama2cHeaderBytes;
  if (bytes > static_cast<unsigned __int128>(UINT64_MAX / 2)) fail("header implies an impossible size");
  return static_cast<std::uint64_t>(bytes);
}

ModelConfig llama2c_config(const Llama2cHeader& h) {
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size < 0 ? -static_cast<std::int64_t>(h.vocab_size) : h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.rope_style = RopeStyle::kInterleaved;
  c.tie_word_embeddings = h.vocab_size > 0;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  return c;
}

Llama2cHeader llama2c_header(const ModelConfig& c) {
  Llama2cHeader h;
  h.dim = static_cast<std::int32_t>(c.hidden_size);
  h.hidden_dim = static_cast<std::int32_t>(c.intermediate_size);
  h.n_layers = static_cast<std::int32_t>(c.num_hidden_layers);
  h.n_heads = static_cast<std::int32_t>(c.num_attention_heads);
  h.n_kv_heads = static_cast<std::int32_t>(c.num_key_value_heads);
  h.vocab_size = static_cast<std::int32_t>(c.tie_word_embeddings ? c.vocab_size : -c.vocab_size);
  h.seq_len = static_cast<std::int32_t>(c.max_position_embeddings);
  return h;
}

LoadedModel load_llama2c(const std::filesystem::path& path) {
  auto map = std::make_shared<const MappedFile>(MappedFile::open(path));
  return load_llama2c(map->bytes(), map, path.string());
}

LoadedModel load_llama2c(std::span<const std::byte> file, std::shared_ptr<const void> owner,
                         const std::string& source) {
  if (file.size() < kLlama2cHeaderBytes)
    throw ModelError("llama2.c file '" + source + "' is " + std::to_string(file.size()) +
                     " bytes, shorter than the 28-byte header (truncated or not a llama2.c checkpoint)");
  std::uint32_t magic = 0;
  std::memcpy(&magic, file.data(), 4);
  if (magic == 0x616b3432u)
    throw ModelError("llama2.c file '" + source + "' is a version 1/2 export (magic \"ak42\"); Loom reads "
                     "the legacy version 0 format: re-export with export.py --version 0");
  Llama2cHeader h;
  static_assert(sizeof(Llama2cHeader) == kLlama2cHeaderBytes);
  std::memcpy(&h, file.data(), kLlama2cHeaderBytes);
  const std::uint64_t expected = llama2c_file_size(h, source);
  if (file.size() != expected)
    throw ModelError("llama2.c file '" + source + "' is " + std::to_string(file.size()) +
                     " bytes but its header (" + header_string(h) + ") implies " + std::to_string(expected) +
                     " bytes; the file is truncated, padded or not a llama2.c version 0 checkpoint");

  LoadedModel model;
  model.config = llama2c_config(h);
  const ModelConfig& c = model.config;
  validate_config(c, source);
  const float* cursor = reinterpret_cast<const float*>(file.data() + kLlama2cHeaderBytes);
  auto take = [&](std::vector<std::int64_t> shape) {
    Tensor t = Tensor::view(std::move(shape), cursor, owner);
    cursor += t.numel();
    return t;
  };
  const std::int64_t dim = c.hidden_size, hid = c.intermediate_size, kv = c.kv_size();
  ModelWeights& w = model.weights;
  w.token_embedding = take({c.vocab_size, dim});
  w.layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  // Stacked [layers, ...] tensors become one view per layer, in file order.
  auto per_layer = [&](Tensor LayerWeights::*field, std::vector<std::int64_t> shape) {
    for (LayerWeights& L : w.layers) L.*field = take(shape);
  };
  per_layer(&LayerWeights::attn_norm, {dim});
  per_layer(&LayerWeights::wq, {dim, dim});
  per_layer(&LayerWeights::wk, {kv, dim});
  per_layer(&LayerWeights::wv, {kv, dim});
  per_layer(&LayerWeights::wo, {dim, dim});
  per_layer(&LayerWeights::ffn_norm, {dim});
  per_layer(&LayerWeights::w_gate, {hid, dim});
  per_layer(&LayerWeights::w_down, {dim, hid});
  per_layer(&LayerWeights::w_up, {hid, dim});
  w.final_norm = take({dim});
  cursor += static_cast<std::size_t>(c.max_position_embeddings * c.head_dim);  // RoPE tables
  w.lm_head = c.tie_word_embeddings ? w.token_embedding : take({c.vocab_size, dim});
  return model;
}

}  // namespace loom::io
