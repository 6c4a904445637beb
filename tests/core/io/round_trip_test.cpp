// Generator -> loader round trips for every architecture, element type, tying and sharding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/io/hf_layout.h"
#include "core/io/model_loader.h"
#include "core/io/random_init.h"
#include "core/io/random_model.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

struct Case {
  Architecture arch;
  DType dtype;
  bool tied;
  int shards;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(architecture_hf_name(c.arch)) + "_" + std::string(safetensors_dtype_name(c.dtype)) +
         (c.tied ? "_tied" : "_untied") + "_shards" + std::to_string(c.shards);
}

float through_dtype(float v, DType dtype) {
  switch (dtype) {
    case DType::f32: return v;
    case DType::f16: return fp16_to_fp32(fp32_to_fp16(v));
    case DType::bf16: return bf16_to_fp32(fp32_to_bf16(v));
    case DType::i32:
    case DType::i64: break;
  }
  return v;
}

class IoRoundTrip : public testing::TestWithParam<Case> {};

TEST_P(IoRoundTrip, GeneratedModelLoadsBack) {
  const Case& k = GetParam();
  test::TempDir dir;
  RandomModelSpec spec;
  spec.config = tiny_config(k.arch);
  spec.config.tie_word_embeddings = k.tied;
  spec.dtype = k.dtype;
  spec.seed = 1234;
  spec.num_shards = k.shards;
  write_random_model(spec, dir.path());

  EXPECT_EQ(std::filesystem::exists(dir / "model.safetensors.index.json"), k.shards > 1);
  const LoadedModel m = load_model(dir.path());
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.architecture, k.arch);
  EXPECT_EQ(c.hidden_size, spec.config.hidden_size);
  EXPECT_EQ(c.head_dim, spec.config.head_dim);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.tie_word_embeddings, k.tied);
  EXPECT_EQ(c.num_experts, spec.config.num_experts);
  EXPECT_EQ(c.qkv_bias, spec.config.qkv_bias);
  EXPECT_EQ(c.qk_norm, spec.config.qk_norm);
  EXPECT_EQ(c.torch_dtype, k.dtype == DType::f32 ? "float32" : k.dtype == DType::f16 ? "float16" : "bfloat16");
  ASSERT_EQ(m.weights.layers.size(), 2u);

  // Every tensor has its shape and the generator's values (spot-checked), rounded to the dtype.
  ModelWeights w = m.weights;  // shares the data; the slots point at the loaded tensors
  const auto slots = hf_tensor_slots(c, w);
  for (const HfTensorSlot& s : slots) {
    const Tensor& t = *s.destination;
    ASSERT_EQ(t.shape(), s.shape) << s.name;
    EXPECT_EQ(t.is_view(), k.dtype == DType::f32) << s.name;
    const std::uint64_t stream = random_stream(spec.seed, s.name);
    for (std::size_t i : {std::size_t{0}, t.numel() / 2, t.numel() - 1})
      ASSERT_EQ(t.data()[i], through_dtype(random_init_value(stream, s.role, tensor_init_std(spec, s.name, s.role), i),
                                           k.dtype))
          << s.name << "[" << i << "]";
  }
  if (k.tied) {
    EXPECT_EQ(m.weights.lm_head.data(), m.weights.token_embedding.data());
  } else {
    EXPECT_NE(m.weights.lm_head.data(), m.weights.token_embedding.data());
    EXPECT_EQ(m.weights.lm_head.shape(), (std::vector<std::int64_t>{c.vocab_size, c.hidden_size}));
  }
  // Values look like an initialised model: norms near 1, weights small and not all equal.
  const LayerWeights& L = m.weights.layers[1];
  EXPECT_NEAR(L.attn_norm.data()[3], 1.0f, 0.1f);
  double sum_sq = 0;
  for (float v : L.wq.values()) sum_sq += double(v) * v;
  EXPECT_NEAR(std::sqrt(sum_sq / double(L.wq.numel())), spec.init_std, spec.init_std * 0.1);
  if (c.is_moe()) {
    EXPECT_EQ(L.experts.size(), 4u);
    EXPECT_EQ(L.router.shape(), (std::vector<std::int64_t>{4, 64}));
    EXPECT_TRUE(L.w_gate.empty());
    EXPECT_EQ(L.shared_expert_gate.empty(), k.arch != Architecture::kQwen2Moe);
  } else {
    EXPECT_EQ(L.w_down.shape(), (std::vector<std::int64_t>{64, 128}));
  }
  EXPECT_EQ(L.bq.empty(), !c.qkv_bias);
  EXPECT_EQ(L.q_norm.empty(), !c.qk_norm);
}

TEST(IoRandomModel, LayerStdScalesTheDecoderLayersWeightsOnly) {
  test::TempDir dir;
  RandomModelSpec spec;
  spec.config = tiny_config(Architecture::kLlama);
  spec.config.tie_word_embeddings = false;
  spec.layer_std = 1e-4f;
  write_random_model(spec, dir.path());
  const LoadedModel m = load_model(dir.path());
  const auto rms = [](const Tensor& t) {
    double sum_sq = 0;
    for (float v : t.values()) sum_sq += double(v) * v;
    return std::sqrt(sum_sq / double(t.numel()));
  };
  for (const LayerWeights& L : m.weights.layers) {
    EXPECT_NEAR(rms(L.wq), 1e-4, 1e-5);
    EXPECT_NEAR(rms(L.w_down), 1e-4, 1e-5);
    EXPECT_NEAR(L.attn_norm.data()[3], 1.0f, 0.1f) << "norms keep init_std";
  }
  EXPECT_NEAR(rms(m.weights.token_embedding), spec.init_std, spec.init_std * 0.1);
  EXPECT_NEAR(rms(m.weights.lm_head), spec.init_std, spec.init_std * 0.1);
}

TEST(IoRandomModel, ShardingDoesNotChangeValuesAndCopiesTokenizer) {
  test::TempDir dir;
  RandomModelSpec spec;
  spec.config = tiny_config(Architecture::kLlama);
  spec.seed = 7;
  const auto tokenizer = test::models_dir() / "llama2-tokenizer.model";
  if (std::filesystem::exists(tokenizer)) spec.tokenizer_model = tokenizer;
  write_random_model(spec, dir / "one");
  spec.num_shards = 5;
  write_random_model(spec, dir / "five");
  int shard_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "five"))
    shard_files += e.path().extension() == ".safetensors";
  EXPECT_EQ(shard_files, 5);
  const LoadedModel a = load_hf_model(dir / "one");
  const LoadedModel b = load_hf_model(dir / "five");
  const auto va = a.weights.layers[1].w_up.values(), vb = b.weights.layers[1].w_up.values();
  EXPECT_TRUE(std::equal(va.begin(), va.end(), vb.begin(), vb.end()));
  if (!spec.tokenizer_model.empty()) {
    EXPECT_EQ(std::filesystem::file_size(dir / "one" / "tokenizer.model"), std::filesystem::file_size(tokenizer));
  }
  spec.seed = 8;
  write_random_model(spec, dir / "other");
  EXPECT_NE(load_hf_model(dir / "other").weights.layers[1].w_up.data()[0], va[0]);
  spec.tokenizer_model = dir / "missing.model";
  EXPECT_MODEL_ERROR(write_random_model(spec, dir / "x"), "missing.model");
}

INSTANTIATE_TEST_SUITE_P(
    AllArchitectures, IoRoundTrip,
    testing::Values(Case{Architecture::kLlama, DType::f32, false, 1}, Case{Architecture::kLlama, DType::bf16, true, 1},
                    Case{Architecture::kLlama, DType::f16, false, 3}, Case{Architecture::kMistral, DType::f32, false, 2},
                    Case{Architecture::kQwen2, DType::bf16, true, 2}, Case{Architecture::kQwen2, DType::f32, false, 1},
                    Case{Architecture::kQwen3, DType::f16, true, 1}, Case{Architecture::kQwen3, DType::f32, false, 4},
                    Case{Architecture::kMixtral, DType::bf16, false, 4}, Case{Architecture::kMixtral, DType::f32, true, 1},
                    Case{Architecture::kQwen2Moe, DType::f16, true, 3}, Case{Architecture::kQwen2Moe, DType::f32, false, 1}),
    case_name);

}  // namespace
}  // namespace loom::io
