// The real stories260K model, loaded once per test binary (for tests that link the io library).
#pragma once

#include "core/io/model_loader.h"
#include "support/test_models.h"

namespace loom::testing {

inline const io::LoadedModel& stories260k() {
  static const io::LoadedModel model = io::load_model(test_models_dir() / "stories260K.bin");
  return model;
}

}  // namespace loom::testing
