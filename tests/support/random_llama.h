// A tiny random model (of `config`'s shape, or a Llama's) written to a scratch folder and loaded
// back, for engine tests that need a real model but not a particular one (weights std 0.08, so
// logits spread and ties are rare).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "support/test_models.h"

namespace loom::testing {

inline io::LoadedModel random_model(const io::ModelConfig& config, std::uint64_t seed, const std::string& tag) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("loom_" + tag + "_" + std::to_string(::getpid()));
  io::RandomModelSpec spec;
  spec.config = config;
  spec.init_std = 0.08f;
  spec.seed = seed;
  io::write_random_model(spec, dir);
  io::LoadedModel loaded = io::load_hf_model(dir);
  std::filesystem::remove_all(dir);
  return loaded;
}

inline io::LoadedModel random_llama(std::uint64_t seed, std::int64_t context, const std::string& tag) {
  io::ModelConfig config = io::tiny_config(io::Architecture::kLlama);
  config.max_position_embeddings = context;
  return random_model(config, seed, tag);
}

// A tiny random Llama with Llama-2's 32000-token vocabulary and tokenizer (from the shared models),
// so that text goes in and out, written to a scratch folder named after `tag` that stays for the
// process (the tokenizer is loaded from it).
inline std::filesystem::path random_text_llama_dir(std::uint64_t seed, std::int64_t context, const std::string& tag) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("loom_" + tag + "_" + std::to_string(::getpid()));
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(io::Architecture::kLlama);
  spec.config.vocab_size = 32000;
  spec.config.max_position_embeddings = context;
  spec.init_std = 0.08f;
  spec.seed = seed;
  spec.tokenizer_model = test_models_dir() / "llama2-tokenizer.model";
  io::write_random_model(spec, dir);
  return dir;
}

}  // namespace loom::testing
