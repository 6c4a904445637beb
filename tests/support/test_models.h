// Where the shared real models are: $LOOM_TEST_MODELS, else ../shared/models beside the project.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace loom::testing {

inline std::filesystem::path test_models_dir() {
  if (const char* env = std::getenv("LOOM_TEST_MODELS"); env && *env) return env;
  return LOOM_TEST_MODELS_DEFAULT;
}

}  // namespace loom::testing
