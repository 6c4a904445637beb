#include "core/io/model_loader.h"

#include "core/io/hf_config.h"

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

ModelConfig load_model_config(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status) && std::filesystem::exists(path / "config.json"))
    return read_hf_config(path / "config.json");
  if (path.filename() == "config.json" && std::filesystem::exists(status)) return read_hf_config(path);
  return load_model(path).config;  // llama2.c: weights are mapped, not read; else load_model's error
}

}  // namespace loom::io
