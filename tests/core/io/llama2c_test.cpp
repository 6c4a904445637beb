#include "core/io/llama2c_loader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/io/model_loader.h"
#include "core/io/random_llama2c.h"
#include "core/io/random_model.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

std::string header_bytes(Llama2cHeader h) { return std::string(reinterpret_cast<const char*>(&h), sizeof h); }

TEST(IoLlama2c, Stories260K) {
  const auto path = test::models_dir() / "stories260K.bin";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found (set LOOM_TEST_MODELS)";
  const LoadedModel m = load_model(path);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{2}));

  // Byte accounting: header + every tensor + the two RoPE tables == the file size.
  const ModelWeights& w = m.weights;
  std::size_t floats = w.token_embedding.numel() + w.final_norm.numel() + 2 * 512 * 4;
  for (const LayerWeights& L : w.layers)
    floats += L.attn_norm.numel() + L.wq.numel() + L.wk.numel() + L.wv.numel() + L.wo.numel() +
              L.ffn_norm.numel() + L.w_gate.numel() + L.w_down.numel() + L.w_up.numel();
  EXPECT_EQ(28 + 4 * floats, 1'056'540u);
  EXPECT_EQ(std::filesystem::file_size(path), 1'056'540u);
  EXPECT_EQ(llama2c_file_size(llama2c_header(c), "x"), 1'056'540u);
  EXPECT_EQ(w.layers[4].wk.shape(), (std::vector<std::int64_t>{32, 64}));
  EXPECT_EQ(w.layers[0].w_down.shape(), (std::vector<std::int64_t>{64, 172}));
  EXPECT_EQ(w.lm_head.data(), w.token_embedding.data());
  // The final norm ends right before the RoPE tables: a trained model's norm is not random noise.
  for (float v : w.final_norm.values()) EXPECT_TRUE(std::isfinite(v) && v > 0.0f && v < 20.0f) << v;
}

TEST(IoLlama2c, FileTooShort) {
  test::TempDir dir;
  test::write_file(dir / "m.bin", std::string(10, '\0'));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "is 10 bytes, shorter than the 28-byte header");
}

TEST(IoLlama2c, SizeMismatchGivesBothNumbers) {
  test::TempDir dir;
  const Llama2cHeader h{64, 172, 5, 8, 4, 512, 512};
  test::write_file(dir / "m.bin", header_bytes(h) + std::string(1000, '\0'));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "is 1028 bytes but its header");
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "implies 1056540 bytes");
}

TEST(IoLlama2c, InvalidHeaders) {
  test::TempDir dir;
  test::write_file(dir / "m.bin", header_bytes({64, 172, 5, 7, 4, 512, 512}) + std::string(100, '\0'));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "dim is not a multiple of n_heads");
  test::write_file(dir / "m.bin", header_bytes({64, -172, 5, 8, 4, 512, 512}));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "non-positive size");
  test::write_file(dir / "m.bin", header_bytes({0x616b3432, 2, 0, 0, 0, 0, 0}));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "version 0");
  test::write_file(dir / "m.bin", header_bytes({2147483647, 2147483647, 2147483647, 1, 1, 2147483647, 1}));
  EXPECT_MODEL_ERROR(load_llama2c(dir / "m.bin"), "llama2.c file");
}

TEST(IoLlama2c, RandomUntiedRoundTripMatchesHfGenerator) {
  test::TempDir dir;
  ModelConfig c = tiny_config(Architecture::kLlama);
  c.tie_word_embeddings = false;
  write_random_llama2c(c, 99, dir / "m.bin");
  RandomModelSpec spec;
  spec.config = c;
  spec.seed = 99;
  write_random_model(spec, dir / "hf");
  const LoadedModel a = load_model(dir / "m.bin");
  const LoadedModel b = load_model(dir / "hf" / "config.json");
  EXPECT_FALSE(a.config.tie_word_embeddings);
  EXPECT_EQ(a.config.rope_style, RopeStyle::kInterleaved);
  EXPECT_EQ(b.config.rope_style, RopeStyle::kRotateHalf);
  auto same = [](const Tensor& x, const Tensor& y) {
    return x.shape() == y.shape() && std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)) == 0;
  };
  EXPECT_TRUE(same(a.weights.token_embedding, b.weights.token_embedding));
  EXPECT_TRUE(same(a.weights.lm_head, b.weights.lm_head));
  EXPECT_TRUE(same(a.weights.final_norm, b.weights.final_norm));
  for (std::size_t l = 0; l < 2; ++l) {
    const LayerWeights &x = a.weights.layers[l], &y = b.weights.layers[l];
    EXPECT_TRUE(same(x.wk, y.wk) && same(x.w_down, y.w_down) && same(x.w_up, y.w_up) && same(x.ffn_norm, y.ffn_norm));
  }
  c.qkv_bias = true;
  EXPECT_MODEL_ERROR(write_random_llama2c(c, 1, dir / "q.bin"), "only plain Llama models");
}

}  // namespace
}  // namespace loom::io
