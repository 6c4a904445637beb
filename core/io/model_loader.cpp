#include "core/io/model_loader.h"

#include "loom/error.h"

namespace loom::io {

LoadedModel load_model(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw ModelError("model path '" + path.string() +
                     "' does not exist (give a Hugging Face model directory or a llama2.c .bin file)");
  if (std::filesystem::is_directory(status)) return load_hf_model(path);
  if (path.filename() == "config.json") return load_hf_model(path.parent_path());
  return load_llama2c(path);
}

}  // namespace loom::io
