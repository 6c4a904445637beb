// Reading and writing a Hugging Face config.json as a ModelConfig.
//
// The architecture comes from "architectures"[0]; defaults follow the HF config classes
// (num_key_value_heads = heads, head_dim = hidden / heads, rope_theta 10000, eps 1e-6). The
// result is validated (validate_config). Every problem is a loom::ModelError naming the file
// and the field.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/io/model_config.h"

namespace loom::io {

// Parses an already-loaded config.json; `source` names it in errors.
ModelConfig parse_hf_config(const nlohmann::json& json, const std::string& source);

// Parses the text of a config.json; not valid JSON is a ModelError naming `source` too.
ModelConfig parse_hf_config_text(std::string_view text, const std::string& source);

// Reads and parses `path` (a config.json).
ModelConfig read_hf_config(const std::filesystem::path& path);

// The config.json (HF field names) describing `config`; parse_hf_config reads it back equal.
nlohmann::json to_hf_config_json(const ModelConfig& config);

}  // namespace loom::io
