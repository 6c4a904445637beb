// The model runner the engine lends a drafter (core/engine/lent_model_runner.h), on the CPU with
// the real stories260K model: chunked, whole or token-by-token extends give the same logits; a
// truncate rolls back exactly; a cache without room refuses a sequence and leaves it as it was;
// a failed extend keeps nothing.
#include <filesystem>
#include <numeric>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine_services.h"
#include "core/engine/lent_model_runner.h"
#include "core/io/model_loader.h"
#include "core/model/config_adapters.h"
#include "support/expect_error.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

// A runner of stories260K made the way the engine makes a drafter's.
class LentRunner {
 public:
  explicit LentRunner(std::vector<std::string> overrides, std::uint64_t kv_tokens = 0)
      : config_(load_config_from(parse_config_text("", "test.toml"), ".", overrides)),
        registry_(PluginRegistry::default_search_path()),
        resolved_(resolve_plugins(config_, registry_)) {
    const fs::path model = test_models_dir() / "stories260K.bin";
    ServicesPlan plan;
    plan.base_dir = ".";
    plan.target.block_size = static_cast<std::uint32_t>(config_.kv().integer("block_size"));
    plan.target.max_num_seqs = static_cast<std::uint32_t>(config_.engine.integer("max_num_seqs"));
    plan.target.max_num_batched_tokens = static_cast<std::uint32_t>(config_.engine.integer("max_num_batched_tokens"));
    plan.target.model = shape_of(io::load_model_config(model), 4);
    plan.max_model_len = plan.target.model.max_position;
    plan.attention = resolved_.find(sdk::PluginKind::attention);
    EngineServiceProvider services(plan);
    runner = services.load_model(model.string(), kv_tokens);
  }
  std::size_t free_blocks() const { return dynamic_cast<const LentModelRunner&>(*runner).num_free_blocks(); }

  std::unique_ptr<sdk::ModelRunner> runner;

 private:
  Config config_;
  PluginRegistry registry_;
  ResolvedPlugins resolved_;
};

std::vector<sdk::TokenId> prompt(std::size_t n, int salt) {
  std::vector<sdk::TokenId> t(n);
  for (std::size_t i = 0; i < n; ++i)
    t[i] = static_cast<sdk::TokenId>((i * 37 + static_cast<std::size_t>(salt) * 11) % 500 + 3);
  return t;
}

// The logits after `tokens` fed to `seq` in one extend.
std::vector<float> logits_after(sdk::ModelRunner& runner, sdk::SeqId seq, std::span<const sdk::TokenId> tokens) {
  std::vector<float> logits(runner.shape().vocab_size);
  sdk::TokenId next = 0;
  const sdk::ModelInput input{seq, tokens};
  runner.extend({&input, 1}, {&next, 1}, logits);
  EXPECT_NE(next, sdk::kNoRoom);
  return logits;
}

TEST(LentModelRunner, ExtendsWholeInChunksOrTokenByTokenGiveTheSameLogits) {
  if (!fs::exists(test_models_dir() / "stories260K.bin")) GTEST_FAIL() << "shared models not found";
  const auto tokens = prompt(45, 1);
  LentRunner whole({});
  const std::vector<float> expected = logits_after(*whole.runner, 1, tokens);
  LentRunner chunked({"engine.max_num_batched_tokens=16"});  // 45 tokens run as 16 + 16 + 13
  EXPECT_EQ(logits_after(*chunked.runner, 1, tokens), expected);
  LentRunner stepwise({});
  std::vector<float> last;
  for (std::size_t i = 0; i < tokens.size(); ++i) last = logits_after(*stepwise.runner, 7, {&tokens[i], 1});
  EXPECT_EQ(last, expected);
  EXPECT_EQ(stepwise.runner->num_tokens(7), tokens.size());
}

TEST(LentModelRunner, SeveralSequencesInOneExtendGiveEachItsOwnLogits) {
  LentRunner batched({"engine.max_num_batched_tokens=24"});
  const auto a = prompt(30, 2), b = prompt(5, 3), c = prompt(19, 4);
  const std::vector<sdk::ModelInput> inputs = {{10, a}, {11, b}, {12, c}};
  std::vector<sdk::TokenId> next(3);
  std::vector<float> logits(3 * batched.runner->shape().vocab_size);
  batched.runner->extend(inputs, next, logits);
  LentRunner alone({});
  const std::size_t vocab = alone.runner->shape().vocab_size;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<float> expected = logits_after(*alone.runner, inputs[i].id, inputs[i].tokens);
    EXPECT_EQ(std::vector<float>(logits.begin() + static_cast<std::ptrdiff_t>(i * vocab),
                                 logits.begin() + static_cast<std::ptrdiff_t>((i + 1) * vocab)),
              expected)
        << "input " << i;
    EXPECT_EQ(next[i],
              static_cast<sdk::TokenId>(std::max_element(expected.begin(), expected.end()) - expected.begin()));
  }
}

TEST(LentModelRunner, TruncateRollsBackSoWhatFollowsIsComputedAsIfTheDraftsWereNeverFed) {
  const auto tokens = prompt(40, 5);
  LentRunner fresh({});
  const std::vector<float> expected = logits_after(*fresh.runner, 1, tokens);
  LentRunner rolled({"kv.block_size=4"});
  const std::size_t all_free = rolled.free_blocks();
  logits_after(*rolled.runner, 1, std::span(tokens).first(30));
  const std::vector<sdk::TokenId> drafts = {9, 8, 7, 6, 5, 4, 3};
  logits_after(*rolled.runner, 1, drafts);
  EXPECT_EQ(rolled.runner->num_tokens(1), 37u);
  rolled.runner->truncate(1, 30);
  EXPECT_EQ(rolled.free_blocks(), all_free - 8);  // 30 tokens in blocks of 4
  EXPECT_EQ(logits_after(*rolled.runner, 1, std::span(tokens).subspan(30)), expected);
  rolled.runner->release(1);
  EXPECT_EQ(rolled.runner->num_tokens(1), 0u);
  EXPECT_EQ(rolled.free_blocks(), all_free);
}

TEST(LentModelRunner, ASequenceBeyondTheCacheGetsNoRoomAndKeepsItsState) {
  LentRunner small({}, 32);  // two blocks of 16
  const auto a = prompt(20, 6), b = prompt(20, 7);
  logits_after(*small.runner, 1, a);
  sdk::TokenId next = 0;
  const sdk::ModelInput second{2, b};
  small.runner->extend({&second, 1}, {&next, 1}, {});
  EXPECT_EQ(next, sdk::kNoRoom);
  EXPECT_EQ(small.runner->num_tokens(2), 0u);
  EXPECT_EQ(small.runner->num_tokens(1), 20u);
  small.runner->release(1);
  small.runner->extend({&second, 1}, {&next, 1}, {});
  EXPECT_NE(next, sdk::kNoRoom);
  EXPECT_EQ(small.runner->num_tokens(2), 20u);
}

TEST(LentModelRunner, AFailedExtendKeepsNothingOfTheCall) {
  LentRunner runner({});
  const std::size_t all_free = runner.free_blocks();
  const auto a = prompt(20, 8);
  logits_after(*runner.runner, 1, a);
  const std::vector<sdk::TokenId> good = prompt(18, 9), bad = {5, 6, 100000};
  const std::vector<sdk::ModelInput> inputs = {{1, good}, {2, bad}};
  std::vector<sdk::TokenId> next(2);
  EXPECT_THROW(runner.runner->extend(inputs, next, {}), Error);
  EXPECT_EQ(runner.runner->num_tokens(1), 20u);
  EXPECT_EQ(runner.runner->num_tokens(2), 0u);
  EXPECT_EQ(runner.free_blocks(), all_free - 2);
  const std::vector<sdk::ModelInput> twice = {{1, good}, {1, good}};
  EXPECT_CONTAINS(message_of<Error>([&] { runner.runner->extend(twice, next, {}); }), "appears twice");
}

}  // namespace
}  // namespace loom::testing
