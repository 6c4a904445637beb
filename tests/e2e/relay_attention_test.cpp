// Relay attention on the CPU engine with the real stories260K model: requests behind a shared
// system prompt (its blocks shared through the prefix cache) give token for token the greedy
// outputs of paged attention, alone or batched, and a request's tokens do not depend on whether
// others share its prefix. A system prompt named in the config is computed when the engine
// starts and held through any eviction; a bad one is refused before anything is served.
#include <filesystem>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "support/expect_error.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

// A system prompt of `shared` random tokens, then a user part of 3-40 tokens per request.
std::vector<Request> behind_a_system_prompt(int count, int shared, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> system = {1};
  for (int i = 1; i < shared; ++i) system.push_back(static_cast<std::int32_t>(3 + rng() % 500));
  std::vector<Request> out;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = "r" + std::to_string(i);
    r.prompt_token_ids = system;
    const int user = 3 + static_cast<int>(rng() % 38);
    for (int j = 0; j < user; ++j) r.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 500));
    r.params.max_tokens = 16 + static_cast<int>(rng() % 48);
    r.params.ignore_eos = true;
    out.push_back(r);
  }
  return out;
}

struct Outcome {
  std::map<std::string, std::vector<std::int32_t>> tokens;
  EngineStats stats;
};

// The first request runs its prompt alone (so its blocks enter the prefix cache), then the rest
// arrive and share them.
Outcome run(const std::vector<Request>& batch, const std::string& attention, std::vector<std::string> overrides = {}) {
  const fs::path model_path = test_models_dir() / "stories260K.bin";
  if (!fs::exists(model_path)) {
    ADD_FAILURE() << "shared models not found at " << test_models_dir() << "; set LOOM_TEST_MODELS";
    return {};
  }
  static const io::LoadedModel model = io::load_model(model_path);
  overrides.push_back("attention.plugin=" + attention);
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, model, std::nullopt);
  Outcome out;
  auto collect = [&](std::vector<RequestResult> results) {
    for (RequestResult& result : results) {
      EXPECT_NE(result.finish_reason, "error") << result.error;
      out.tokens[result.id] = result.token_ids;
    }
  };
  engine.submit(batch[0]);
  collect(engine.step());
  for (std::size_t i = 1; i < batch.size(); ++i) engine.submit(batch[i]);
  for (int steps = 0; engine.has_unfinished() && steps < 100000; ++steps) collect(engine.step());
  out.stats = engine.stats();
  return out;
}

TEST(RelayAttentionEngine, RequestsBehindASharedSystemPromptGetPagedAttentionsGreedyTokens) {
  for (int shared : {40, 100}) {
    for (const char* block_size : {"kv.block_size=16", "kv.block_size=8"}) {
      const auto batch = behind_a_system_prompt(12, shared, static_cast<std::uint64_t>(shared));
      const Outcome paged = run(batch, "paged", {block_size});
      const Outcome relay = run(batch, "relay", {block_size});
      ASSERT_EQ(relay.tokens.size(), batch.size());
      EXPECT_EQ(relay.tokens, paged.tokens) << shared << " shared tokens, " << block_size;
      // The 11 requests after the first find the system prompt's full blocks of 16 in the cache.
      EXPECT_LE(relay.stats.computed_prompt_tokens + 11 * (shared / 16) * 16, relay.stats.prompt_tokens)
          << "the system prompt's blocks were not shared through the prefix cache";
    }
  }
}

TEST(RelayAttentionEngine, ARequestsTokensAreTheSameAloneOrBehindTheSamePromptAsOthers) {
  const auto batch = behind_a_system_prompt(10, 64, 3);
  const Outcome together = run(batch, "relay");
  for (std::size_t i : {std::size_t{0}, std::size_t{4}, std::size_t{9}}) {
    const Outcome alone = run({batch[i]}, "relay");
    EXPECT_EQ(alone.tokens.at(batch[i].id), together.tokens.at(batch[i].id)) << batch[i].id;
  }
  const Outcome one_at_a_time = run(batch, "relay", {"engine.max_num_seqs=1"});
  EXPECT_EQ(one_at_a_time.tokens, together.tokens);
}

std::string ids_text(const std::vector<std::int32_t>& ids, std::size_t count) {
  std::string text;
  for (std::size_t i = 0; i < count; ++i) text += (i ? ", " : "") + std::to_string(ids[i]);
  return text;
}

TEST(RelayAttentionEngine, AConfiguredSystemPromptIsComputedAtStartHeldThroughEvictionAndGivesPagedsTokens) {
  const auto batch = behind_a_system_prompt(10, 100, 5);
  const std::string system = "attention.system_prompt_ids=" + ids_text(batch[0].prompt_token_ids, 100);
  const fs::path model_path = test_models_dir() / "stories260K.bin";
  ASSERT_TRUE(fs::exists(model_path)) << "shared models not found at " << test_models_dir();
  const io::LoadedModel model = io::load_model(model_path);
  // A pool of 40 blocks of 16: the prompt's six whole blocks held, the rest churned by requests
  // that share nothing with it.
  const std::vector<std::string> overrides = {"attention.plugin=relay", system, "kv.num_blocks=40", "kv.block_size=16"};
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, model, std::nullopt);
  EXPECT_EQ(engine.stats().kv.used_blocks, 6u) << "the system prompt's whole blocks, held";
  EXPECT_EQ(engine.stats().prompt_tokens, 0u) << "computing it is not counted as a request";
  EXPECT_EQ(engine.stats().generated_tokens, 0u);
  std::mt19937 rng(9);
  for (int i = 0; i < 12; ++i) {  // 12 x 150 tokens: the free blocks turned over several times
    Request other;
    other.id = "other" + std::to_string(i);
    other.prompt_token_ids = {1};
    for (int t = 0; t < 150; ++t) other.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 500));
    other.params.max_tokens = 4;
    engine.submit(other);
  }
  while (engine.has_unfinished()) engine.step();
  const std::uint64_t computed_before = engine.stats().computed_prompt_tokens;
  std::map<std::string, std::vector<std::int32_t>> tokens;
  for (const Request& r : batch) engine.submit(r);
  while (engine.has_unfinished())
    for (RequestResult& result : engine.step()) {
      EXPECT_NE(result.finish_reason, "error") << result.error;
      tokens[result.id] = result.token_ids;
    }
  std::uint64_t prompts = 0;
  for (const Request& r : batch) prompts += r.prompt_token_ids.size();
  EXPECT_EQ(engine.stats().computed_prompt_tokens - computed_before, prompts - batch.size() * 96)
      << "every request found the system prompt's 96 tokens of whole blocks in the cache";
  EXPECT_EQ(engine.stats().kv.used_blocks, 6u);
  EXPECT_EQ(tokens, run(batch, "paged", {"kv.block_size=16"}).tokens);
}

TEST(RelayAttentionEngine, ASystemPromptThatCannotBeKeptIsRefusedNamingTheKey) {
  const fs::path model_path = test_models_dir() / "stories260K.bin";
  ASSERT_TRUE(fs::exists(model_path)) << "shared models not found at " << test_models_dir();
  const io::LoadedModel model = io::load_model(model_path);
  const std::string twenty =
      "attention.system_prompt_ids=1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, "
      "20, 21, 22, 23";
  auto start = [&](std::vector<std::string> overrides) {
    overrides.push_back("attention.plugin=relay");
    overrides.push_back("kv.block_size=16");
    Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
    PluginRegistry registry(PluginRegistry::default_search_path());
    Engine engine(config, registry, model, std::nullopt);
  };
  EXPECT_CONTAINS(
      message_of<ConfigError>([&] { start({"attention.system_prompt=You are a helpful assistant. Answer briefly."}); }),
      "[attention] system_prompt: the model has no tokenizer");
  EXPECT_CONTAINS(message_of<Error>([&] { start({"attention.system_prompt_ids=1, 2, x"}); }),
                  "system_prompt_ids: \"x\" is not a token id");
  EXPECT_CONTAINS(message_of<Error>([&] { start({twenty, "attention.system_prompt=hello"}); }), "not both");
  EXPECT_CONTAINS(message_of<ConfigError>([&] { start({"attention.system_prompt_ids=1, 2, 3"}); }),
                  "is 3 tokens, less than one KV block of 16");
  EXPECT_CONTAINS(message_of<ConfigError>([&] { start({twenty + ", 600"}); }),
                  "token id 600 is outside the vocabulary [0, 512)");
  EXPECT_CONTAINS(message_of<ConfigError>([&] {
                    start({twenty, "kv.prefix_caching=false"});
                  }),
                  "set [kv] prefix_caching = true");
}

}  // namespace
}  // namespace loom::testing
