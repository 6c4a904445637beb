// Helpers for the tokenizer tests: the shared models folder and the Llama 2 tokenizer in it.
#pragma once

#include <cstdlib>
#include <filesystem>

#include "core/tokenizer/tokenizer.h"

namespace loom::tokenizer_test {

// LOOM_TEST_MODELS from the environment, else the folder the build was configured with.
inline std::filesystem::path models_dir() {
  if (const char* env = std::getenv("LOOM_TEST_MODELS"); env != nullptr && *env != '\0') return env;
  return LOOM_TEST_MODELS_DEFAULT;
}

inline std::filesystem::path llama2_tokenizer_path() {
  return models_dir() / "llama2-tokenizer.model";
}

// Loaded once per test binary; Tokenizer is immutable, so sharing it is safe.
inline const Tokenizer& llama2_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::load(llama2_tokenizer_path());
  return tokenizer;
}

}  // namespace loom::tokenizer_test
