// Writing random-weight llama2.c (.bin, version 0) checkpoints, e.g. a TinyStories-15M shape
// to compare speed with llama2.c's run.c. Weights are those write_random_model gives the same
// seed and config (same tensor names), only laid out the llama2.c way; RoPE tables are zeros.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/io/model_config.h"

namespace loom::io {

// Throws loom::ModelError when `config` cannot be expressed in the format (not a plain Llama:
// biases, qk_norm, experts, head_dim != hidden / heads, sizes beyond int32), loom::Error on I/O.
// The size of the file write_random_llama2c writes for `config`; throws as it would.
std::uint64_t random_llama2c_bytes(const ModelConfig& config);

void write_random_llama2c(const ModelConfig& config, std::uint64_t seed, const std::filesystem::path& path,
                          float init_std = 0.02f);

}  // namespace loom::io
