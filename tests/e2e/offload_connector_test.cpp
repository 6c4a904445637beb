// kv_connector/offload in the engine (CPU): conversations come back after the KV pool has
// evicted their history; with the offload tier their history is loaded back from host memory or
// disk instead of recomputed, and every output is token for token what it is without the tier —
// also when the disk files were damaged in between (the loads fail, the engine recomputes).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "support/stories260k.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

// Twelve conversations of 150-token histories; the second wave asks each again with 20 more tokens.
std::vector<Request> wave(int turn) {
  std::vector<Request> requests;
  for (int c = 0; c < 12; ++c) {
    std::mt19937 rng(100 + c);
    Request r;
    r.id = "c" + std::to_string(c) + "t" + std::to_string(turn);
    r.prompt_token_ids = {1};
    for (int t = 0; t < (turn == 0 ? 150 : 170); ++t) r.prompt_token_ids.push_back(3 + static_cast<int>(rng() % 500));
    r.params.max_tokens = turn == 0 ? 4 : 8;
    r.params.ignore_eos = true;
    requests.push_back(r);
  }
  return requests;
}

struct Outcome {
  std::map<std::string, std::vector<std::int32_t>> tokens;
  std::uint64_t computed_prompt_tokens = 0;
  std::uint64_t loaded_tokens = 0;
  std::map<std::string, std::uint64_t> counts;  // the connector's
};

// Both waves through one engine; `between` runs after the first.
Outcome run(const std::vector<std::string>& overrides, const std::function<void()>& between = {}) {
  const io::LoadedModel& model = stories260k();
  std::vector<std::string> all = {"kv.block_size=16", "kv.num_blocks=24", "engine.max_num_seqs=2"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", all);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, model, std::nullopt);
  Outcome out;
  for (int turn = 0; turn < 2; ++turn) {
    if (turn == 1 && between) between();
    for (const Request& r : wave(turn)) engine.submit(r);
    while (engine.has_unfinished())
      for (RequestResult& result : engine.step()) {
        EXPECT_NE(result.finish_reason, "error") << result.error;
        out.tokens[result.id] = result.token_ids;
      }
  }
  out.computed_prompt_tokens = engine.stats().computed_prompt_tokens;
  out.loaded_tokens = engine.stats().loaded_tokens;
  for (const auto& [name, value] : engine.stats().connector_counts) out.counts[name] = value;
  EXPECT_EQ(engine.stats().kv.used_blocks, 0u);
  return out;
}

class OffloadConnector : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(test_models_dir() / "stories260K.bin")) << "set LOOM_TEST_MODELS";
    disk_ = fs::temp_directory_path() / ("loom_offload_disk_" + std::to_string(::getpid()));
    fs::remove_all(disk_);
  }
  void TearDown() override { fs::remove_all(disk_); }
  fs::path disk_;
};

TEST_F(OffloadConnector, ReturningConversationsLoadTheirHistoryFromHostOrDiskWithIdenticalTokens) {
  const Outcome none = run({});
  ASSERT_EQ(none.tokens.size(), 24u);
  const std::uint64_t history = 12 * 144;  // 9 full blocks of each conversation's first turn

  const Outcome host = run({"kv_connector.plugin=offload"});
  EXPECT_EQ(host.tokens, none.tokens);
  EXPECT_LE(host.computed_prompt_tokens + history, none.computed_prompt_tokens)
      << "the second wave's histories came from the host tier";
  EXPECT_GE(host.loaded_tokens, history);
  EXPECT_EQ(none.loaded_tokens, 0u);
  // Per tier: all from the host, nothing spilled without a disk tier.
  EXPECT_EQ(host.counts.at("host_loaded_tokens"), host.loaded_tokens);
  EXPECT_EQ(host.counts.at("disk_loaded_tokens"), 0u);
  EXPECT_EQ(host.counts.at("spilled_blocks"), 0u);
  EXPECT_GT(host.counts.at("kept_blocks"), 0u);

  // A host tier of one block: nearly everything passes through to disk and is read back from there.
  const Outcome disk =
      run({"kv_connector.plugin=offload", "kv_connector.host_bytes=20KiB", "kv_connector.disk_path=" + disk_.string()});
  EXPECT_EQ(disk.tokens, none.tokens);
  EXPECT_LE(disk.computed_prompt_tokens + history - 12 * 16, none.computed_prompt_tokens);
  EXPECT_EQ(disk.counts.at("host_loaded_tokens") + disk.counts.at("disk_loaded_tokens"), disk.loaded_tokens);
  EXPECT_GT(disk.counts.at("disk_loaded_tokens"), disk.counts.at("host_loaded_tokens"));
  EXPECT_GT(disk.counts.at("spilled_blocks"), 50u);

  // Every disk file damaged between the waves: the loads fail, the engine recomputes, and the
  // tokens are still the same.
  const Outcome damaged =
      run({"kv_connector.plugin=offload", "kv_connector.host_bytes=20KiB", "kv_connector.disk_path=" + disk_.string()},
          [&] {
            int files = 0;
            for (const auto& entry : fs::directory_iterator(disk_)) {
              std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
              f.seekp(200);
              f.put('\x7f');
              ++files;
            }
            EXPECT_GT(files, 50);
          });
  EXPECT_EQ(damaged.tokens, none.tokens);
}

// A forked sample's copy-on-write may land in a block the pool just evicted: the tier must keep
// that block's content before the copy overwrites it. Twelve histories are cached, then pairs of
// sampled continuations (n = 2) fork while the pool evicts those histories, then the histories
// come back: their tokens must be what they are without the tier.
TEST_F(OffloadConnector, ABlockEvictedForACopyOnWriteIsKeptBeforeTheCopyOverwritesIt) {
  auto run_forking = [&](const std::string& connector, EngineStats& stats) {
    const std::vector<std::string> overrides = {"kv.block_size=16", "kv.num_blocks=24", "engine.max_num_seqs=4",
                                                "kv_connector.plugin=" + connector};
    Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
    PluginRegistry registry(PluginRegistry::default_search_path());
    Engine engine(config, registry, stories260k(), std::nullopt);
    std::map<std::string, std::vector<std::int32_t>> tokens;
    auto drain = [&] {
      while (engine.has_unfinished())
        for (RequestResult& result : engine.step()) {
          EXPECT_NE(result.finish_reason, "error") << result.error;
          tokens[result.id + "#" + std::to_string(result.index)] = result.token_ids;
        }
    };
    for (const Request& r : wave(0)) engine.submit(r);
    drain();
    for (int f = 0; f < 6; ++f) {
      std::mt19937 rng(900 + f);
      Request r;
      r.id = "fork" + std::to_string(f);
      r.prompt_token_ids = {1};
      for (int t = 0; t < 40; ++t) r.prompt_token_ids.push_back(3 + static_cast<int>(rng() % 500));
      r.params.n = 2;
      r.params.temperature = 1.0;
      r.params.seed = 7 + f;
      r.params.max_tokens = 24;
      r.params.ignore_eos = true;
      engine.submit(r);
    }
    drain();
    for (const Request& r : wave(1)) engine.submit(r);
    drain();
    stats = engine.stats();
    return tokens;
  };
  EngineStats plain, tiered;
  const auto none = run_forking("none", plain);
  const auto offload = run_forking("offload", tiered);
  EXPECT_GT(plain.kv.copies, 0u) << "the forks copy on write";
  EXPECT_GT(tiered.loaded_tokens, 0u);
  EXPECT_EQ(offload, none);
}

// Saved up front, a block is not copied again when the pool evicts it (its hash names its
// content): every block is copied out once, and the copies count exactly those bytes.
TEST_F(OffloadConnector, EveryNewBlockSavedUpFrontServesTheReturningTurnsAndIsNotCopiedAgainOnEviction) {
  const Outcome none = run({});
  const Outcome evicted = run({"kv_connector.plugin=offload"});
  const Outcome saved = run({"kv_connector.plugin=offload", "kv_connector.save_new_blocks=true"});
  EXPECT_EQ(saved.tokens, none.tokens);
  EXPECT_LT(saved.computed_prompt_tokens, none.computed_prompt_tokens);
  const io::ModelConfig& c = stories260k().config;
  const auto block_bytes = static_cast<std::uint64_t>(2 * c.num_hidden_layers * 16 * c.kv_size() * 4);  // fp32 pool
  EXPECT_EQ(saved.counts.at("copied_out_bytes"), saved.counts.at("kept_blocks") * block_bytes);
  EXPECT_EQ(saved.counts.at("copied_in_bytes"), saved.loaded_tokens / 16 * block_bytes);
  // Each conversation has 11 distinct full blocks (9 of its first turn, 2 more of its second): each
  // is kept once at most.
  EXPECT_LE(saved.counts.at("kept_blocks"), 12u * 11);
  EXPECT_GT(saved.counts.at("kept_blocks"), evicted.counts.at("kept_blocks"))
      << "up front, blocks never evicted are kept too";
}

// Preemption becomes a swap: a preempted sequence's full blocks stay cached on the device, go to
// the host tier when the pool evicts them, and load back when it resumes, instead of being
// recomputed; outputs are unchanged.
TEST_F(OffloadConnector, PreemptedSequencesReloadTheirBlocksInsteadOfRecomputingThem) {
  const io::LoadedModel& model = stories260k();
  auto run_preempting = [&](const std::string& connector, EngineStats& stats) {
    Config config = load_config_from(
        parse_config_text("", "test.toml"), ".",
        std::vector<std::string>{"kv.num_blocks=40", "scheduler.output_reserve=0", "kv_connector.plugin=" + connector});
    PluginRegistry registry(PluginRegistry::default_search_path());
    Engine engine(config, registry, model, std::nullopt);
    std::mt19937 rng(5);
    for (int i = 0; i < 24; ++i) {
      Request r;
      r.id = "r" + std::to_string(i);
      r.prompt_token_ids = {1};
      for (int t = 0; t < 100 + i * 4; ++t) r.prompt_token_ids.push_back(3 + static_cast<int>(rng() % 500));
      r.params.max_tokens = 120;
      r.params.ignore_eos = true;
      engine.submit(r);
    }
    std::map<std::string, std::vector<std::int32_t>> tokens;
    while (engine.has_unfinished())
      for (RequestResult& result : engine.step()) tokens[result.id] = result.token_ids;
    stats = engine.stats();
    return tokens;
  };
  EngineStats dropped, swapped;
  const auto recomputing = run_preempting("none", dropped);
  const auto reloading = run_preempting("offload", swapped);
  EXPECT_EQ(reloading, recomputing);
  ASSERT_GT(dropped.preemptions, 0u);
  ASSERT_GT(swapped.preemptions, 0u);
  std::printf("recomputed tokens after %llu preemptions: %llu dropping blocks, %llu with the offload tier\n",
              static_cast<unsigned long long>(dropped.preemptions),
              static_cast<unsigned long long>(dropped.recomputed_tokens),
              static_cast<unsigned long long>(swapped.recomputed_tokens));
  EXPECT_GT(dropped.recomputed_tokens, 500u);
  EXPECT_LT(swapped.recomputed_tokens * 4, dropped.recomputed_tokens)
      << "only the partial last block of a preempted sequence is computed again";
}

// Each tier's order is an evictor plugin's: whichever orders the host and disk tiers, the tokens
// are those without the tier and the histories still load; an evictor that does not exist is
// refused by its key.
TEST_F(OffloadConnector, TiersOrderedByAnyEvictorPluginGiveTheSameTokens) {
  const Outcome none = run({});
  for (const char* order : {"lfu", "arc"}) {
    const Outcome tiered =
        run({"kv_connector.plugin=offload", "kv_connector.host_bytes=60KiB", "kv_connector.disk_path=" + disk_.string(),
             std::string("kv_connector.host_evictor=") + order, std::string("kv_connector.disk_evictor=") + order});
    EXPECT_EQ(tiered.tokens, none.tokens) << order;
    EXPECT_GT(tiered.loaded_tokens, 0u) << order;
  }
  try {
    run({"kv_connector.plugin=offload", "kv_connector.host_evictor=lur"});
    FAIL() << "expected a configuration error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[kv_connector] host_evictor"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'lur' not found"), std::string::npos) << e.what();
  }
}

// A load copies its blocks by groups of layers (the CPU model waits before each layer): any
// grouping, one group to one a layer and more groups than layers, and host blocks mixed with
// blocks read from disk (a host tier of 110 blocks: the 108 blocks of history come back from
// both), gives the tokens of no tier, and moves each block's bytes once.
TEST_F(OffloadConnector, LoadsInAnyNumberOfLayerGroupsGiveTheSameTokensAndCopyEachBlockOnce) {
  const Outcome none = run({});
  std::optional<std::uint64_t> copied_in;
  for (const char* groups : {"1", "2", "5", "64"}) {
    fs::remove_all(disk_);
    const Outcome tiered =
        run({"kv_connector.plugin=offload", "kv_connector.host_bytes=2200KiB",
             "kv_connector.disk_path=" + disk_.string(), std::string("kv_connector.load_layer_groups=") + groups});
    EXPECT_EQ(tiered.tokens, none.tokens) << groups << " groups";
    EXPECT_GT(tiered.counts.at("host_loaded_tokens"), 0u) << groups;
    EXPECT_GT(tiered.counts.at("disk_loaded_tokens"), 0u) << groups;
    if (!copied_in) copied_in = tiered.counts.at("copied_in_bytes");
    EXPECT_EQ(tiered.counts.at("copied_in_bytes"), *copied_in) << groups << " groups";
  }
  try {
    run({"kv_connector.plugin=offload", "kv_connector.load_layer_groups=0"});
    FAIL() << "expected a configuration error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[kv_connector] load_layer_groups"), std::string::npos) << e.what();
  }
}

TEST_F(OffloadConnector, AFolderThatCannotBeMadeIsAConfigErrorNamingTheKey) {
  std::ofstream(disk_) << "a file, not a folder";
  try {
    run({"kv_connector.plugin=offload", "kv_connector.disk_path=" + (disk_ / "sub").string()});
    FAIL() << "expected a configuration error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("disk_path"), std::string::npos) << e.what();
  }
  fs::remove(disk_);
}

}  // namespace
}  // namespace loom::testing
