#include "core/io/hf_config.h"

#include <gtest/gtest.h>

#include "core/io/random_model.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

nlohmann::json llama_json() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "bos_token_id": 1, "eos_token_id": 2,
    "torch_dtype": "float16", "rope_scaling": null})");
}

TEST(IoHfConfig, LlamaDefaults) {
  const ModelConfig c = parse_hf_config(llama_json(), "config.json");
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_style, RopeStyle::kRotateHalf);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.is_moe());
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(c.torch_dtype, "float16");
}

TEST(IoHfConfig, Llama3RopeScalingAndEosList) {
  auto j = llama_json();
  j["num_key_value_heads"] = 8;
  j["rope_theta"] = 500000.0;
  j["eos_token_id"] = {128001, 128008, 128009};
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  const ModelConfig c = parse_hf_config(j, "config.json");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.eos_token_ids.size(), 3u);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(parse_hf_config(j, "c").rope_scaling.type, RopeScalingType::kLinear);
  j["rope_scaling"] = {{"type", "longrope"}, {"factor", 2.0}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "rope_type \"longrope\" is not supported");
}

TEST(IoHfConfig, ArchitectureFlags) {
  auto j = llama_json();
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["head_dim"] = 64;
  ModelConfig c = parse_hf_config(j, "c");
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.q_size(), 32 * 64);
  j.erase("head_dim");
  j["architectures"] = {"Qwen2ForCausalLM"};
  c = parse_hf_config(j, "c");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  j["architectures"] = {"MixtralForCausalLM"};
  j["num_local_experts"] = 8;
  j["num_experts_per_tok"] = 2;
  c = parse_hf_config(j, "c");
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.moe_intermediate_size, 11008);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_TRUE(c.layer_is_moe(0));
}

TEST(IoHfConfig, UnsupportedArchitectureListsSupportedOnes) {
  auto j = llama_json();
  j["architectures"] = {"GPT2LMHeadModel"};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "dir/config.json"),
                     "architecture \"GPT2LMHeadModel\" is not supported; supported are LlamaForCausalLM, "
                     "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MixtralForCausalLM, "
                     "Qwen2MoeForCausalLM");
}

TEST(IoHfConfig, Validation) {
  auto j = llama_json();
  j["num_key_value_heads"] = 5;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "must be a multiple of num_key_value_heads (5)");
  j = llama_json();
  j["hidden_size"] = 0;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "hidden_size must be positive");
  j = llama_json();
  j.erase("vocab_size");
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "required field \"vocab_size\" is missing");
  j = llama_json();
  j["num_hidden_layers"] = "32";
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"num_hidden_layers\" must be an integer");
}

// Found while writing the hf_config fuzz target, confirmed with it (a timeout, a UBSan report):
// a MoE config claiming 10^12 layers made validate_config() visit every layer, and sizes whose
// products overflow int64 were accepted (q_size() = heads * head_dim was undefined behaviour).
TEST(IoHfConfig, AbsurdSizesAreRefusedAndNeverLoopedOver) {
  auto j = llama_json();
  j["architectures"] = {"MixtralForCausalLM"};
  j["num_hidden_layers"] = 1'000'000'000'000;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "num_hidden_layers is 1000000000000, more than any model has");
  j["num_hidden_layers"] = INT32_MAX;  // accepted, and checked without visiting each layer
  EXPECT_EQ(parse_hf_config(j, "c").num_hidden_layers, INT32_MAX);
  j = llama_json();
  j["head_dim"] = std::int64_t{1} << 62;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "head_dim is 4611686018427387904, more than any model has");
}

// Found while writing the hf_config fuzz target, confirmed with it (a UBSan report): the value
// was converted to an integer unchecked, which is undefined behaviour for 1e300.
TEST(IoHfConfig, Llama3OriginalMaxPositionMustBeAWholeNumber) {
  auto j = llama_json();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 1e300}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"original_max_position_embeddings\" must be a whole number");
  j["rope_scaling"]["original_max_position_embeddings"] = 0.5;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "must be a whole number from 1 to 2147483647, found 0.5");
  j["rope_scaling"]["original_max_position_embeddings"] = 8192.0;
  EXPECT_EQ(parse_hf_config(j, "c").rope_scaling.original_max_position_embeddings, 8192);
}

// Found while writing the hf_config fuzz target: "found <value>" in a message dumped a deeply
// nested value recursively and overflowed the stack.
TEST(IoHfConfig, DeepNestingIsRefusedNotACrash) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  EXPECT_MODEL_ERROR(parse_hf_config_text(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": )" + deep + "}",
                                          "dir/config.json"),
                     "model config 'dir/config.json' nests lists and objects deeper than 64 levels");
}

TEST(IoHfConfig, WrittenJsonReadsBackEqual) {
  for (Architecture a : {Architecture::kLlama, Architecture::kMistral, Architecture::kQwen2, Architecture::kQwen3,
                         Architecture::kMixtral, Architecture::kQwen2Moe}) {
    ModelConfig c = tiny_config(a);
    c.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0, 4.0, 8192};
    const ModelConfig r = parse_hf_config(to_hf_config_json(c), "c");
    EXPECT_EQ(r.architecture, a);
    EXPECT_EQ(r.head_dim, c.head_dim);
    EXPECT_EQ(r.qkv_bias, c.qkv_bias);
    EXPECT_EQ(r.qk_norm, c.qk_norm);
    EXPECT_EQ(r.num_experts, c.num_experts);
    EXPECT_EQ(r.moe_intermediate_size, c.moe_intermediate_size);
    EXPECT_EQ(r.shared_expert_intermediate_size, c.shared_expert_intermediate_size);
    EXPECT_EQ(r.norm_topk_prob, c.norm_topk_prob);
    EXPECT_EQ(r.rope_scaling.type, RopeScalingType::kLlama3);
    EXPECT_EQ(r.eos_token_ids, c.eos_token_ids);
  }
}

TEST(IoHfConfig, MissingConfigFile) {
  test::TempDir dir;
  EXPECT_MODEL_ERROR(read_hf_config(dir / "config.json"), "cannot read model config");
  test::write_file(dir / "config.json", "{not json");
  EXPECT_MODEL_ERROR(read_hf_config(dir / "config.json"), "is not valid JSON");
}

}  // namespace
}  // namespace loom::io
