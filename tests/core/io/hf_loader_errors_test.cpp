// load_hf_model / load_model on directories that are incomplete or disagree with their config.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

class IoHfLoaderErrors : public testing::Test {
 protected:
  void SetUp() override {
    RandomModelSpec spec;
    spec.config = tiny_config(Architecture::kLlama);
    spec.config.tie_word_embeddings = true;
    write_random_model(spec, dir_.path());
  }
  void edit_config(const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(dir_ / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    edit(j);
    test::write_file(dir_ / "config.json", j.dump());
  }
  test::TempDir dir_;
};

TEST_F(IoHfLoaderErrors, LoadsWhenIntact) { EXPECT_EQ(load_hf_model(dir_.path()).config.num_hidden_layers, 2); }

TEST_F(IoHfLoaderErrors, MissingConfigJson) {
  std::filesystem::remove(dir_ / "config.json");
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()), "has no config.json");
}

TEST_F(IoHfLoaderErrors, MissingLmHeadSuggestsTying) {
  edit_config([](nlohmann::json& j) { j["tie_word_embeddings"] = false; });
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()),
                     "tensor 'lm_head.weight' (shape [256, 64], expected for LlamaForCausalLM) is missing; if the "
                     "model shares its embedding");
}

TEST_F(IoHfLoaderErrors, MissingBiasTensor) {
  edit_config([](nlohmann::json& j) { j["architectures"] = {"Qwen2ForCausalLM"}; });
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()), "tensor 'model.layers.0.self_attn.q_proj.bias'");
}

TEST_F(IoHfLoaderErrors, ShapeMismatchNamesTensorExpectedAndFound) {
  edit_config([](nlohmann::json& j) { j["intermediate_size"] = 96; });
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()),
                     "tensor 'model.layers.0.mlp.gate_proj.weight' in 'model.safetensors' has shape [128, 64] but "
                     "config.json implies [96, 64]");
}

TEST_F(IoHfLoaderErrors, UnsupportedArchitecture) {
  edit_config([](nlohmann::json& j) { j["architectures"] = {"GemmaForCausalLM"}; });
  EXPECT_MODEL_ERROR(load_model(dir_.path()), "architecture \"GemmaForCausalLM\" is not supported");
}

TEST_F(IoHfLoaderErrors, TruncatedWeights) {
  const auto file = dir_ / "model.safetensors";
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()), "extend beyond the data section");
}

TEST_F(IoHfLoaderErrors, NoWeightsAtAll) {
  std::filesystem::remove(dir_ / "model.safetensors");
  EXPECT_MODEL_ERROR(load_hf_model(dir_.path()), "has neither model.safetensors");
}

TEST(IoLoadModel, MissingPath) {
  EXPECT_MODEL_ERROR(load_model("/nonexistent/loom/model"), "does not exist");
  EXPECT_MODEL_ERROR(load_hf_model("/nonexistent/loom/model"), "is not a directory");
}

}  // namespace
}  // namespace loom::io
