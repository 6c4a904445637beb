// A tiny random Llama written to a scratch folder and loaded back, for engine tests that need a
// real model but not a particular one (weights std 0.08, so logits spread and ties are rare).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/io/model_loader.h"
#include "core/io/random_model.h"

namespace loom::testing {

inline io::LoadedModel random_llama(std::uint64_t seed, std::int64_t context, const std::string& tag) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("loom_" + tag + "_" + std::to_string(::getpid()));
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(io::Architecture::kLlama);
  spec.config.max_position_embeddings = context;
  spec.init_std = 0.08f;
  spec.seed = seed;
  io::write_random_model(spec, dir);
  io::LoadedModel loaded = io::load_hf_model(dir);
  std::filesystem::remove_all(dir);
  return loaded;
}

}  // namespace loom::testing
