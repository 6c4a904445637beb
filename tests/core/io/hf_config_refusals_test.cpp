// Config keys that change the forward pass: each is implemented or refused naming key and value,
// never skipped in silence; and sliding windows, which Loom serves by capping the context.
#include <gtest/gtest.h>

#include "core/io/hf_config.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

using nlohmann::json;

json base(const char* arch) {
  return {{"architectures", {arch}},  {"hidden_size", 64}, {"intermediate_size", 96},         {"num_hidden_layers", 4},
          {"num_attention_heads", 4}, {"vocab_size", 512}, {"max_position_embeddings", 32768}};
}

TEST(IoHfConfigRefusals, HiddenActOtherThanSiluIsRefused) {
  json j = base("LlamaForCausalLM");
  j["hidden_act"] = "gelu_pytorch_tanh";
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"hidden_act\" = \"gelu_pytorch_tanh\" is not supported");
  for (const char* act : {"silu", "swish"}) {
    j["hidden_act"] = act;
    EXPECT_NO_THROW(parse_hf_config(j, "c")) << act;
  }
}

TEST(IoHfConfigRefusals, MlpBiasIsRefusedForEveryArchitecture) {
  for (const char* arch : {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"}) {
    json j = base(arch);
    j["mlp_bias"] = true;
    EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"mlp_bias\" = true is not supported");
    j["mlp_bias"] = false;
    EXPECT_NO_THROW(parse_hf_config(j, "c"));
  }
}

TEST(IoHfConfigRefusals, AttentionBiasWhereTheArchitectureDoesNotTakeItIsRefused) {
  for (const char* arch : {"MistralForCausalLM", "MixtralForCausalLM", "Qwen2ForCausalLM", "Qwen2MoeForCausalLM"}) {
    json j = base(arch);
    j["attention_bias"] = true;
    EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), std::string("\"attention_bias\" = true, but ") + arch);
    j["attention_bias"] = false;
    EXPECT_NO_THROW(parse_hf_config(j, "c")) << arch;
  }
  for (const char* arch : {"LlamaForCausalLM", "Qwen3ForCausalLM"}) {
    json j = base(arch);
    j["attention_bias"] = true;
    const ModelConfig c = parse_hf_config(j, "c");
    EXPECT_TRUE(c.qkv_bias && c.o_bias) << arch;
  }
}

TEST(IoHfConfigRefusals, QuantizedCheckpointsAreRefused) {
  json j = base("LlamaForCausalLM");
  j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"),
                     "\"quantization_config\" is set: quantized checkpoints are not supported");
}

TEST(IoHfConfigRefusals, Qwen2MoeReadsQkvBias) {
  json j = base("Qwen2MoeForCausalLM");
  EXPECT_TRUE(parse_hf_config(j, "c").qkv_bias);
  j["qkv_bias"] = false;
  EXPECT_FALSE(parse_hf_config(j, "c").qkv_bias);
}

TEST(IoHfConfigRefusals, MistralSlidingWindowCapsTheContextAtTheWindow) {
  json j = base("MistralForCausalLM");
  j["sliding_window"] = 4096;
  ModelConfig c = parse_hf_config(j, "c");
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.context_length(), 4096);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 32768);
  j["sliding_window"] = 65536;  // longer than the context: changes nothing
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 32768);
  j["sliding_window"] = -1;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"sliding_window\" must not be negative");
}

TEST(IoHfConfigRefusals, QwenSlidingWindowCountsOnlyWhenEnabledForSomeLayer) {
  json j = base("Qwen2ForCausalLM");
  j["sliding_window"] = 4096;
  j["max_window_layers"] = 28;
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 32768);  // use_sliding_window absent: off
  j["use_sliding_window"] = true;                              // layers >= 28 slide, and there are 4
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 32768);
  j["max_window_layers"] = 2;
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 4096);
  j["layer_types"] = {"full_attention", "full_attention", "full_attention", "full_attention"};  // wins
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 32768);
  j["layer_types"][3] = "sliding_attention";
  EXPECT_EQ(parse_hf_config(j, "c").context_length(), 4096);
  j["use_sliding_window"] = false;
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"layer_types\" marks sliding-window layers but \"use_sliding_window\"");
  j["layer_types"][3] = "chunked_attention";
  EXPECT_MODEL_ERROR(parse_hf_config(j, "c"), "\"layer_types\" holds \"chunked_attention\"");
  // Qwen2-MoE: transformers writes sliding_window 0 when it is off.
  json m = base("Qwen2MoeForCausalLM");
  m["use_sliding_window"] = false;
  m["sliding_window"] = 0;
  EXPECT_EQ(parse_hf_config(m, "c").context_length(), 32768);
  m["use_sliding_window"] = true;
  m["sliding_window"] = 1024;
  EXPECT_EQ(parse_hf_config(m, "c").context_length(), 1024);  // its even layers below max_window_layers slide
}

TEST(IoHfConfigRefusals, Transformers5DtypeKeyIsRead) {
  json j = base("LlamaForCausalLM");
  j["dtype"] = "bfloat16";
  EXPECT_EQ(parse_hf_config(j, "c").torch_dtype, "bfloat16");
}

TEST(IoHfConfigRefusals, WrittenSlidingWindowReadsBackEqual) {
  for (const char* arch : {"MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen2MoeForCausalLM"}) {
    json j = base(arch);
    j["num_key_value_heads"] = 2;
    j["use_sliding_window"] = true;
    j["max_window_layers"] = arch == std::string("Qwen2MoeForCausalLM") ? 4 : 0;
    j["sliding_window"] = 2048;
    const ModelConfig c = parse_hf_config(j, "c");
    EXPECT_EQ(parse_hf_config(to_hf_config_json(c), "c").context_length(), 2048) << arch;
  }
}

}  // namespace
}  // namespace loom::io
