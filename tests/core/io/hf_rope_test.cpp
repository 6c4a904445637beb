// RoPE settings in both config layouts (transformers 5's rope_parameters, transformers 4's
// rope_theta + rope_scaling), their agreement, and every rope_type: implemented or refused by name.
#include "core/io/hf_rope.h"

#include <gtest/gtest.h>

#include "core/io/hf_config.h"
#include "io_test_util.h"
#include "support/expect_error.h"

namespace loom::io {
namespace {

using nlohmann::json;

json base(const char* arch = "LlamaForCausalLM") {
  return {{"architectures", {arch}},  {"hidden_size", 64}, {"intermediate_size", 96},        {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"vocab_size", 512}, {"max_position_embeddings", 4096}};
}

const json kLlama3 = {{"rope_type", "llama3"},
                      {"factor", 8.0},
                      {"low_freq_factor", 1.0},
                      {"high_freq_factor", 4.0},
                      {"original_max_position_embeddings", 8192}};

void expect_llama3(const ModelConfig& c) {
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
}

TEST(IoHfRope, Transformers5RopeParametersAreRead) {
  json j = base();
  j["rope_parameters"] = kLlama3;
  j["rope_parameters"]["rope_theta"] = 500000.0;
  expect_llama3(parse_hf_config(j, "c"));
}

TEST(IoHfRope, Transformers4RopeThetaAndRopeScalingAreRead) {
  json j = base();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = kLlama3;
  expect_llama3(parse_hf_config(j, "c"));
}

TEST(IoHfRope, BothLayoutsTogetherAreReadWhenTheyAgree) {
  json j = base();
  j["rope_theta"] = 500000;  // an integer equal to the other layout's float
  j["rope_scaling"] = kLlama3;
  j["rope_parameters"] = kLlama3;
  j["rope_parameters"]["rope_theta"] = 500000.0;
  expect_llama3(parse_hf_config(j, "c"));
  j["rope_scaling"] = nullptr;  // transformers 4 wrote null for "no scaling"; the new layout says
  expect_llama3(parse_hf_config(j, "c"));
}

TEST(IoHfRope, ContradictingLayoutsAreAnErrorNamingBothValues) {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  j["rope_theta"] = 10000.0;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "dir/config.json"),
                     "model config 'dir/config.json': \"rope_theta\" gives rope_theta = 10000.0 but "
                     "\"rope_parameters\" gives 1000000.0");
  j.erase("rope_theta");
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"),
                     "\"rope_scaling\" says rope type \"linear\" but \"rope_parameters\" says \"default\"");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 4.0}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "gives factor = 2.0 but \"rope_parameters\" gives 4.0");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"type", "yarn"}, {"factor", 2.0}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "names two rope types, \"linear\" and \"yarn\"");
}

TEST(IoHfRope, ThetaDefaultsToTheArchitecturesOwn) {
  EXPECT_EQ(parse_hf_config(base(), "c").rope_theta, 10000.0);
  json j = base("MixtralForCausalLM");
  EXPECT_EQ(parse_hf_config(j, "c").rope_theta, 1e6);  // MixtralConfig's default
  j["rope_parameters"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse_hf_config(j, "c").rope_theta, 1e6);
}

TEST(IoHfRope, LinearAndDynamicTakeAFactor) {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 10000.0}, {"factor", 4.0}};
  ModelConfig c = parse_hf_config(j, "c");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c.rope_scaling.factor, 4.0);
  j["rope_parameters"] = {{"type", "dynamic"}, {"factor", 2.0}};  // the older "type" key
  c = parse_hf_config(j, "c");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kDynamic);
  EXPECT_CONTAINS(describe_rope(c), "dynamic scaling (factor 2; unscaled within the 4096 positions Loom serves)");
  j["rope_parameters"] = {{"rope_type", "linear"}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "rope_type \"linear\" needs \"factor\"");
}

TEST(IoHfRope, Llama3NeedsItsFactorsAndDefaultsTheOriginalLengthToMaxPosition) {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "rope_type \"llama3\" needs \"low_freq_factor\"");
  j["rope_parameters"]["low_freq_factor"] = 1.0;
  EXPECT_EQ(parse_hf_config(j, "c").rope_scaling.original_max_position_embeddings, 4096);
  j["rope_parameters"]["low_freq_factor"] = 4.0;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "needs high_freq_factor > low_freq_factor");
}

TEST(IoHfRope, YarnReadsItsParametersAndResolvesTheAttentionFactor) {
  json j = base("Qwen3ForCausalLM");
  j["max_position_embeddings"] = 131072;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  ModelConfig c = parse_hf_config(j, "c");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_EQ(c.rope_scaling.factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 32768);
  EXPECT_EQ(c.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(c.rope_scaling.beta_slow, 1.0);
  EXPECT_TRUE(c.rope_scaling.truncate);
  EXPECT_NEAR(c.rope_scaling.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-15);
  // DeepSeek-style mscale / mscale_all_dim: their ratio; equal values cancel.
  j["rope_scaling"]["mscale"] = 0.707;
  j["rope_scaling"]["mscale_all_dim"] = 0.707;
  EXPECT_EQ(parse_hf_config(j, "c").rope_scaling.attention_factor, 1.0);
  j["rope_scaling"]["attention_factor"] = 1.5;  // explicit wins
  j["rope_scaling"]["truncate"] = false;
  j["rope_scaling"]["beta_fast"] = 16;
  c = parse_hf_config(j, "c");
  EXPECT_EQ(c.rope_scaling.attention_factor, 1.5);
  EXPECT_FALSE(c.rope_scaling.truncate);
  EXPECT_EQ(c.rope_scaling.beta_fast, 16.0);
  // No factor: transformers takes max_position_embeddings / original_max_position_embeddings.
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"original_max_position_embeddings", 32768}};
  EXPECT_EQ(parse_hf_config(j, "c").rope_scaling.factor, 4.0);
}

TEST(IoHfRope, UnimplementedRopeSettingsAreRefusedByName) {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "longrope"}, {"short_factor", {1.0}}, {"long_factor", {2.0}}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "RoPE setting \"long_factor\" (= a list) is not understood");
  j["rope_parameters"] = {{"rope_type", "longrope"}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"),
                     "rope_type \"longrope\" is not supported; Loom implements rope types default, linear, dynamic, "
                     "llama3 and yarn");
  j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"partial_rotary_factor\" = 0.5 is not supported");
  j["rope_parameters"] = {{"rope_type", "default"}};
  j["partial_rotary_factor"] = 0.25;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"partial_rotary_factor\" = 0.25 is not supported");
  j["partial_rotary_factor"] = 1.0;
  EXPECT_NO_THROW(parse_hf_config(j, "c"));
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "per-layer-type settings (\"full_attention\")");
  j["rope_parameters"] = "default";
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"rope_parameters\" must be an object or null, found \"default\"");
}

TEST(IoHfRope, WrittenRopeParametersReadBackEqual) {
  for (RopeScalingType type : {RopeScalingType::kNone, RopeScalingType::kLinear, RopeScalingType::kLlama3,
                               RopeScalingType::kYarn, RopeScalingType::kDynamic}) {
    RopeScaling s;
    s.type = type;
    s.factor = 4.0;
    s.low_freq_factor = 2.0;
    s.high_freq_factor = 8.0;
    s.original_max_position_embeddings = 1024;
    s.beta_fast = 24;
    s.truncate = false;
    s.attention_factor = 1.25;
    const HfRope r = read_hf_rope({{"rope_parameters", hf_rope_parameters(250000.0, s)}}, 10000.0, 4096, "c");
    EXPECT_EQ(r.theta, 250000.0);
    EXPECT_EQ(r.scaling.type, type);
    ModelConfig read, written;
    read.rope_theta = r.theta;
    read.rope_scaling = r.scaling;
    written.rope_theta = 250000.0;
    written.rope_scaling = type == RopeScalingType::kNone ? RopeScaling{} : s;
    EXPECT_EQ(describe_rope(read), describe_rope(written));
  }
}

}  // namespace
}  // namespace loom::io
