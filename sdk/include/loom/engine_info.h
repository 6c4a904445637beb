// Facts about the engine and the model that every plugin receives when it is constructed.
#pragma once

#include <cstdint>
#include <string>

namespace loom::sdk {

class EngineServices;  // loom/engine_services.h

// The shape of the loaded model, as far as policies and backends need it.
struct ModelShape {
  std::uint32_t num_layers = 0;
  std::uint32_t hidden_size = 0;
  std::uint32_t num_heads = 0;
  std::uint32_t num_kv_heads = 0;
  std::uint32_t head_dim = 0;
  std::uint32_t vocab_size = 0;
  std::uint32_t max_position = 0;      // longest context the model supports
  std::uint32_t num_experts = 0;       // 0 for a dense model
  std::uint32_t experts_per_token = 0;
  std::uint32_t kv_bytes_per_element = 4;  // 4 fp32 (CPU), 2 bf16/fp16
};

struct EngineInfo {
  std::string device = "cpu";            // "cpu", "cuda", "cuda:1"
  std::uint32_t block_size = 16;         // tokens per KV block
  // KV blocks in the pool, fixed before allocators are made. 0 for the attention backend and the
  // parallel plugin, which are made before the model is loaded (to be asked supports() and each
  // rank's layers), and for the drafter, made before the pool is sized (a draft model it loads
  // takes its memory from the pool's); a backend reads the pool's size from its KvCacheView.
  std::uint64_t num_blocks = 0;
  std::uint32_t max_num_seqs = 64;       // sequences in one step, at most
  std::uint32_t max_num_batched_tokens = 2048;  // tokens processed in one step, at most
  std::uint64_t seed = 0;                // the run's seed, for policies that randomize
  bool prefix_caching = true;
  ModelShape model;
  // What the engine lends the plugin (loom/engine_services.h: a model runner, evictors): set for
  // a drafter and a KV connector, null for the other kinds. Valid while the plugin's constructor
  // runs.
  EngineServices* services = nullptr;

  // Bytes of K plus V for one block across all layers.
  std::uint64_t block_bytes() const {
    return 2ull * model.num_layers * block_size * model.num_kv_heads * model.head_dim *
           model.kv_bytes_per_element;
  }
};

}  // namespace loom::sdk
