// Loading a whole model (config + fp32 weights) from disk.
//
// Every defect is a loom::ModelError that names the file, the tensor, what was expected and what
// was found: a missing config.json or tensor, a shape that disagrees with the config, a
// truncated or corrupt file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "core/io/model_weights.h"

namespace loom::io {

// A Hugging Face directory: config.json plus model.safetensors or a sharded index. Tensors that
// are F32 and 4-byte aligned in the file are viewed in place; F16/BF16 are converted to fp32.
// Tensors the architecture does not use (e.g. rotary_emb.inv_freq) are ignored.
LoadedModel load_hf_model(const std::filesystem::path& dir);

// A llama2.c checkpoint (.bin, legacy version 0 format; see llama2c_loader.h).
LoadedModel load_llama2c(const std::filesystem::path& path);
// The same from a whole file already in memory (4-byte aligned); `source` names it in messages.
// The weights view `file` in place and keep `owner` alive (empty when the caller keeps `file`
// alive itself).
LoadedModel load_llama2c(std::span<const std::byte> file, std::shared_ptr<const void> owner,
                         const std::string& source);

// A directory -> load_hf_model; a file -> load_llama2c (a config.json file -> its directory).
LoadedModel load_model(const std::filesystem::path& path);

// Only the config load_model(path) would give, without reading weights: a directory's
// config.json, or a llama2.c file's header (the file mapped, its size checked). Throws what
// load_model would for a missing or malformed config.
ModelConfig load_model_config(const std::filesystem::path& path);

}  // namespace loom::io
