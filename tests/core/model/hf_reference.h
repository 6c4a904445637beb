// The Hugging Face reference cases under tests/data/hf_reference/ (made by
// tools/device/make_hf_references.py with transformers): each a tiny model folder saved by
// transformers and the greedy continuations transformers computed for it in fp32.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace loom::testing {

struct HfReferencePrompt {
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> output;  // cut before the first step within 1e-3 of a tie
  std::vector<float> first_logits;   // transformers' logits after the prompt
};

struct HfReferenceCase {
  std::string name;
  std::filesystem::path folder;
  std::string transformers_version;
  std::vector<HfReferencePrompt> prompts;
};

// $LOOM_TEST_DATA/hf_reference, else the source tree's tests/data/hf_reference.
inline std::filesystem::path hf_reference_dir() {
  if (const char* env = std::getenv("LOOM_TEST_DATA"); env && *env) return std::filesystem::path(env) / "hf_reference";
  return std::filesystem::path(LOOM_SOURCE_DIR) / "tests" / "data" / "hf_reference";
}

inline HfReferenceCase load_hf_reference(const std::string& name) {
  HfReferenceCase c;
  c.name = name;
  c.folder = hf_reference_dir() / name;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(c.folder / "reference.json"));
  c.transformers_version = j.at("transformers").get<std::string>();
  for (const auto& p : j.at("prompts"))
    c.prompts.push_back({p.at("prompt_token_ids").get<std::vector<std::int32_t>>(),
                         p.at("output_token_ids").get<std::vector<std::int32_t>>(),
                         p.at("first_logits").get<std::vector<float>>()});
  return c;
}

// Every case the reference script makes; a missing folder fails the test that loads it.
inline const std::vector<std::string>& hf_reference_cases() {
  static const std::vector<std::string> names = {
      "llama2",         "llama3", "llama3_v4", "llama_linear", "llama_yarn",    "llama_tied", "llama_bias", "mistral",
      "mistral_window", "qwen2",  "qwen2_v4",  "qwen3",        "qwen3_yarn_v4", "mixtral",    "qwen2_moe"};
  return names;
}

}  // namespace loom::testing
