// The CPU model against the float64 reference for every architecture, bit-exact batch
// invariance, and the real stories260K checkpoint against its shipped greedy continuations.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "model_harness.h"
#include "reference_forward.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

struct ArchCase {
  io::Architecture arch;
  bool tied;
};

io::LoadedModel generated_model(const ArchCase& c, std::uint64_t seed) {
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(c.arch);
  spec.config.tie_word_embeddings = c.tied;
  spec.seed = seed;
  // Larger weights than the usual 0.02 make the logits spread out, so errors cannot hide.
  spec.init_std = 0.08f;
  fs::path dir = fs::temp_directory_path() / ("loom_model_test_" + std::to_string(static_cast<int>(c.arch)) +
                                              (c.tied ? "_tied_" : "_untied_") + std::to_string(::getpid()));
  io::write_random_model(spec, dir);
  io::LoadedModel model = io::load_hf_model(dir);
  fs::remove_all(dir);
  return model;
}

class CpuModelVsReference : public ::testing::TestWithParam<ArchCase> {};

TEST_P(CpuModelVsReference, LogitsMatchTheFloat64ForwardWithin1e5) {
  io::LoadedModel model = generated_model(GetParam(), 17);
  const std::vector<std::int32_t> prompt = {1, 37, 200, 5, 5, 91, 3, 254, 17, 128, 64};
  auto reference = reference_logits(model, prompt);
  ModelHarness harness(std::move(model), 4);  // block size 4: the prompt spans three blocks
  // Prefill 7 tokens, then a chunk of 2, then two decodes: every path of the forward.
  std::vector<std::vector<float>> rows;
  for (auto [begin, end] : {std::pair{0, 7}, {7, 9}, {9, 10}, {10, 11}}) {
    auto out = harness.step({{0, std::vector<std::int32_t>(prompt.begin() + begin, prompt.begin() + end)}});
    rows.insert(rows.end(), out[0].begin(), out[0].end());
  }
  ASSERT_EQ(rows.size(), reference.size());
  for (std::size_t t = 0; t < rows.size(); ++t) {
    double err = 0, norm = 0;
    for (std::size_t v = 0; v < rows[t].size(); ++v) {
      err += (rows[t][v] - reference[t][v]) * (rows[t][v] - reference[t][v]);
      norm += reference[t][v] * reference[t][v];
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-5) << "position " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, CpuModelVsReference,
                         ::testing::Values(ArchCase{io::Architecture::kLlama, true}, ArchCase{io::Architecture::kLlama, false},
                                           ArchCase{io::Architecture::kMistral, false},
                                           ArchCase{io::Architecture::kQwen2, true}, ArchCase{io::Architecture::kQwen3, false},
                                           ArchCase{io::Architecture::kMixtral, false},
                                           ArchCase{io::Architecture::kQwen2Moe, true}),
                         [](const auto& info) {
                           return std::string(io::architecture_hf_name(info.param.arch)) +
                                  (info.param.tied ? "_tied" : "_untied");
                         });

TEST(CpuModel, ASequenceGetsBitIdenticalLogitsAloneOrInAMixedBatch) {
  for (auto arch : {io::Architecture::kLlama, io::Architecture::kMixtral}) {
    io::LoadedModel model = generated_model({arch, false}, 5);
    ModelHarness alone(model, 8), mixed(model, 8);
    const std::vector<std::int32_t> prompt = {1, 9, 8, 7, 6, 5, 4, 3, 2, 100};
    auto a = alone.step({{0, prompt}})[0];
    // In the mixed batch the same prompt is prefilled in two chunks next to other sequences.
    mixed.step({{1, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}, {0, {prompt.begin(), prompt.begin() + 4}}});
    auto m = mixed.step({{2, {50, 51}}, {1, {13}}, {0, {prompt.begin() + 4, prompt.end()}}})[2];
    ASSERT_EQ(m.size(), 6u);
    for (std::size_t r = 0; r < m.size(); ++r)
      EXPECT_EQ(0, std::memcmp(a[4 + r].data(), m[r].data(), m[r].size() * sizeof(float))) << "row " << r;
    auto next_alone = alone.step({{0, {77}}})[0][0];
    auto next_mixed = mixed.step({{0, {77}}, {2, {52}}})[0][0];
    EXPECT_EQ(0, std::memcmp(next_alone.data(), next_mixed.data(), next_alone.size() * sizeof(float)));
  }
}

// Two runners of different models in one process (a draft model beside its target), their steps
// alternating, give each model's tokens alone: no state is shared between runners.
TEST(CpuModel, TwoRunnersOfDifferentModelsInterleavedEachGiveTheirTokensAlone) {
  const io::LoadedModel llama = generated_model({io::Architecture::kLlama, false}, 5);
  const io::LoadedModel qwen = generated_model({io::Architecture::kQwen2, true}, 6);
  const std::vector<std::vector<std::int32_t>> prompts_a = {{1, 9, 8, 7}, {1, 60, 61}};
  const std::vector<std::vector<std::int32_t>> prompts_b = {{1, 2, 3, 4, 5, 6}};
  ModelHarness alone_a(llama, 8), alone_b(qwen, 8);
  const auto expect_a = alone_a.greedy(prompts_a, 10);
  const auto expect_b = alone_b.greedy(prompts_b, 10);
  ModelHarness a(llama, 8), b(qwen, 8);
  const auto [got_a, got_b] = greedy_interleaved(a, prompts_a, b, prompts_b, 10);
  EXPECT_EQ(got_a, expect_a);
  EXPECT_EQ(got_b, expect_b);
  EXPECT_NE(expect_a[0], expect_b[0]);  // the two models really differ
}

// LOOM_PROFILE=1 times every step; LOOM_PROFILE=decode only those where every sequence adds one token (what
// tools/device/relay_bench.sh compares the attention backends by).
TEST(CpuModelProfile, DecodeSettingTimesOnlyStepsInWhichEverySequenceAddsOneToken) {
  for (const auto& [setting, expected_steps] : std::vector<std::pair<const char*, int>>{{"1", 4}, {"decode", 2}}) {
    ::setenv("LOOM_PROFILE", setting, 1);
    ModelHarness harness(generated_model({io::Architecture::kLlama, true}, 1), 8);
    ::unsetenv("LOOM_PROFILE");
    harness.step({{0, {1, 2, 3, 4}}, {1, {1, 5}}});  // prefills
    harness.step({{0, {7}}, {1, {8}}});               // decodes
    harness.step({{0, {9}}, {1, {10}}});
    harness.step({{0, {11}}, {2, {1, 2, 3}}});  // a decode beside a prefill
    const std::string report = harness.model().profile_report();
    EXPECT_NE(report.find("over " + std::to_string(expected_steps) + " steps"), std::string::npos)
        << "LOOM_PROFILE=" << setting << "\n" << report;
  }
}

TEST(CpuModel, RejectsATokenOutsideTheVocabularyNamingIt) {
  ModelHarness harness(generated_model({io::Architecture::kLlama, true}, 1));
  try {
    harness.step({{0, {1, 999999}}});
    FAIL() << "no error";
  } catch (const RequestError& e) {
    EXPECT_NE(std::string(e.what()).find("token id 999999 is outside the model's vocabulary [0, 256)"),
              std::string::npos)
        << e.what();
  }
}

// The real trained checkpoint reproduces every shipped continuation token for token, decoded
// all together in one batch and each alone, with two block sizes.
TEST(CpuModel, Stories260KReproducesTheReferenceContinuations) {
  const fs::path dir = test_models_dir();
  ASSERT_TRUE(fs::exists(dir / "stories260K.bin")) << "shared models not found at " << dir << "; set LOOM_TEST_MODELS";
  io::LoadedModel model = io::load_model(dir / "stories260K.bin");
  nlohmann::json cases = nlohmann::json::parse(std::ifstream(dir / "stories260K.greedy.json"));
  std::vector<std::vector<std::int32_t>> prompts, expected;
  int steps = 0;
  for (const auto& [name, item] : cases.items()) {
    prompts.push_back(item["prompt_token_ids"].get<std::vector<std::int32_t>>());
    expected.push_back(item["output_token_ids"].get<std::vector<std::int32_t>>());
    steps = std::max(steps, item["max_new_tokens"].get<int>());
  }
  for (int block_size : {8, 32}) {
    ModelHarness together(model, block_size);
    auto outputs = together.greedy(prompts, steps);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      outputs[i].resize(expected[i].size());
      EXPECT_EQ(outputs[i], expected[i]) << "prompt " << i << " in a batch, block size " << block_size;
    }
  }
  ModelHarness single(model, 16);
  auto alone = single.greedy({prompts[0]}, static_cast<int>(expected[0].size()));
  EXPECT_EQ(alone[0], expected[0]) << "prompt 0 alone";
}

// What 16-bit storage alone does to stories260K's greedy outputs: the CPU runner storing its
// weights and the activations between kernels as the GPU runner does (CpuModel::store_like), over
// 300 random prompts of 1-256 tokens, 8 tokens each. bf16 keeps 8 bits of mantissa, and on this
// small, sharp model its first differences from the fp32 run reach far beyond fp16's: up to about
// 13% of the logit range (max - mean) against under 1%. A GPU bf16 run is therefore held to what
// bf16 storage accounts for (engine_gpu_test.cpp), not to fp16's bound (docs/numerics.md).
TEST(CpuModelStoredLike16Bit, Bf16StorageAloneMovesStories260KFirstDifferencesFarBeyondFp16s) {
  const fs::path dir = test_models_dir();
  ASSERT_TRUE(fs::exists(dir / "stories260K.bin")) << "shared models not found at " << dir << "; set LOOM_TEST_MODELS";
  const io::LoadedModel model = io::load_model(dir / "stories260K.bin");
  const auto prompts = random_prompts(300, 512, 256, 2026);
  constexpr int kSteps = 8, kMaxLen = 256 + kSteps;
  const int max_tokens = kMaxLen * static_cast<int>(prompts.size());
  ModelHarness fp32(model, 16, static_cast<int>(prompts.size()), kMaxLen);
  const auto reference = fp32.greedy(prompts, kSteps);
  std::map<sdk::DType, double> worst;
  std::map<sdk::DType, int> differing;
  std::map<sdk::DType, std::size_t> worst_prompt;
  for (sdk::DType dtype : {sdk::DType::bf16, sdk::DType::f16}) {
    auto cpu = std::make_unique<CpuModel>(model);
    cpu->store_like(dtype);
    ModelHarness stored(std::move(cpu), 16, static_cast<int>(prompts.size()), kMaxLen, max_tokens);
    const auto outputs = stored.greedy(prompts, kSteps);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const double gap = divergence_gap(model, prompts[i], reference[i], outputs[i]);
      differing[dtype] += gap != 0.0;
      if (gap > worst[dtype]) worst[dtype] = gap, worst_prompt[dtype] = i;
    }
    std::printf("stored as %s: %d of %zu continuations differ from fp32; largest gap %.4f of the range, prompt %zu "
                "(%zu tokens)\n",
                sdk::dtype_name(dtype), differing[dtype], prompts.size(), worst[dtype], worst_prompt[dtype],
                prompts[worst_prompt[dtype]].size());
  }
  EXPECT_LE(worst[sdk::DType::f16], 0.02);
  EXPECT_GT(worst[sdk::DType::bf16], 0.05) << "bf16 storage moves some first differences beyond fp16's 2% bound";
  EXPECT_LE(worst[sdk::DType::bf16], 0.15);
  EXPECT_GT(differing[sdk::DType::bf16], 2 * differing[sdk::DType::f16]);
}

}  // namespace
}  // namespace loom::testing
