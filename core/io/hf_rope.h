// The RoPE settings of a Hugging Face config.json, in both layouts transformers writes:
// transformers 5's "rope_parameters" {"rope_type", "rope_theta", "factor", ...} and
// transformers 4's top-level "rope_theta" and "rope_scaling". Both may be present; where they
// say different things the config is refused. Every rope_type transformers defines for the
// supported architectures is implemented (default, linear, dynamic, llama3, yarn) or refused by
// name; so are partial rotary embeddings and per-layer-type RoPE settings (docs/model-formats.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/io/model_config.h"

namespace loom::io {

struct HfRope {
  double theta = 10000.0;
  RopeScaling scaling;
};

// Reads the RoPE settings of `config` (a parsed config.json naming `source` in errors);
// `default_theta` is the architecture's when the config names none, `max_position_embeddings`
// the default of original_max_position_embeddings (as transformers does). Throws loom::ModelError
// naming the key and value of whatever it does not implement.
HfRope read_hf_rope(const nlohmann::json& config, double default_theta, std::int64_t max_position_embeddings,
                    const std::string& source);

// The transformers-5 "rope_parameters" object for `theta` and `scaling`; read_hf_rope reads it
// back equal.
nlohmann::json hf_rope_parameters(double theta, const RopeScaling& scaling);

}  // namespace loom::io
