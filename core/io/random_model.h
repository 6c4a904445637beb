// Writing random-weight models in the Hugging Face layout (config.json + safetensors), for tests
// and benchmarks of shapes whose real weights are not at hand. Tensors are generated and written
// one piece at a time, so a 7B-shaped model never sits in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/io/dtype.h"
#include "core/io/hf_layout.h"
#include "core/io/model_config.h"

namespace loom::io {

struct RandomModelSpec {
  // Architecture and shape; flags the architecture implies (qkv_bias for Qwen2, qk_norm for
  // Qwen3, MoE fields) must be set as parse_hf_config would set them — tiny_config() does.
  ModelConfig config;
  DType dtype = DType::f32;  // element type in the safetensors files
  std::uint64_t seed = 0;
  float init_std = 0.02f;
  // The std of the decoder layers' weights and biases (their norms keep init_std); below zero,
  // init_std. Near zero the residual stream stays the token's embedding and the next token
  // depends almost only on the last one: a random bigram table whose greedy continuation of a
  // token is always the same (a workload for prompt lookup).
  float layer_std = -1.0f;
  // When non-empty, copied into the directory as tokenizer.model (tokenizer.json for a .json file).
  std::filesystem::path tokenizer_model;
  // 1: model.safetensors. N > 1: model-0000i-of-0000N.safetensors of about equal size plus
  // model.safetensors.index.json (fewer files when there are fewer tensors than N).
  int num_shards = 1;
};

// Creates `dir` if needed and writes config.json (HF field names, torch_dtype from spec.dtype),
// the safetensors file(s) and optionally tokenizer.model. Element i of tensor `name` is
// random_init_value(random_stream(seed, name), role, std, i) rounded to spec.dtype, std being
// tensor_init_std(spec, name, role).
// Throws loom::ModelError for an invalid config or tokenizer path, loom::Error on I/O failure.
void write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir);

float tensor_init_std(const RandomModelSpec& spec, const std::string& name, TensorRole role);

// The bytes of tensor data write_random_model writes for `config` in `dtype` (headers, config.json
// and the tokenizer, a few KiB to a MiB, not counted); throws ModelError for an invalid config.
std::uint64_t random_model_bytes(const ModelConfig& config, DType dtype);

// A small valid config of `arch` (hidden 64, 2 layers, 4 heads, 2 KV heads, vocab 256; Qwen3
// with an explicit head_dim of 32; MoE with 4 experts, top 2), for tests.
ModelConfig tiny_config(Architecture arch);

}  // namespace loom::io
