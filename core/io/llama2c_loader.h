// The llama2.c checkpoint format (legacy "version 0", as written by export.py --version 0 and
// the tinyllamas files): 7 little-endian int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len}, then float32 tensors stacked over layers:
//   token embedding [vocab, dim]; attn RMSNorm [L, dim]; wq [L, dim, dim]; wk, wv [L, kv_dim, dim];
//   wo [L, dim, dim]; FFN RMSNorm [L, dim]; w1 gate [L, hidden, dim]; w2 down [L, dim, hidden];
//   w3 up [L, hidden, dim]; final RMSNorm [dim]; two legacy RoPE tables [seq_len, head_dim/2]
//   (unused); and, only when vocab_size < 0, the classifier [vocab, dim].
// Numerics: RMSNorm eps 1e-5, RoPE theta 10000 on consecutive pairs (RopeStyle::kInterleaved),
// BOS 1, EOS 2. load_llama2c (model_loader.h) views the weights in place in the mapping.
#pragma once

#include <cstdint>

#include "core/io/model_config.h"

namespace loom::io {

constexpr std::uint64_t kLlama2cHeaderBytes = 7 * 4;

struct Llama2cHeader {
  std::int32_t dim = 0;
  std::int32_t hidden_dim = 0;
  std::int32_t n_layers = 0;
  std::int32_t n_heads = 0;
  std::int32_t n_kv_heads = 0;
  std::int32_t vocab_size = 0;  // negative: an untied classifier follows the RoPE tables
  std::int32_t seq_len = 0;
};

// The file size the header implies, header included. Throws loom::ModelError (naming `source`)
// when the header is not a valid llama2.c header.
std::uint64_t llama2c_file_size(const Llama2cHeader& header, const std::string& source);

// The ModelConfig of a llama2.c header (architecture llama, interleaved RoPE, eps 1e-5, ...).
ModelConfig llama2c_config(const Llama2cHeader& header);

// The header describing `config` (a Llama-shaped config; tied embeddings -> positive vocab).
Llama2cHeader llama2c_header(const ModelConfig& config);

}  // namespace loom::io
