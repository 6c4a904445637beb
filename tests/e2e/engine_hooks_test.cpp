// The engine's hooks for the plugin kinds that move KV and propose tokens, proven with test-only
// plugins that record every call (tests/e2e/hook_plugins): a KV connector that stores the blocks
// it is given and loads them back, a drafter that drafts from a script, and a parallel layout of
// two ranks. Through prefill, chunked prefill, decode, preemption, failed steps, finished and
// failed requests, the tests assert the calls' order and arguments and that greedy outputs on the
// CPU are token-identical to a run without the plugins.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "run_loom.h"
#include "support/expect_error.h"
#include "support/random_llama.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kBlockSize = 4;

const io::LoadedModel& small_model() {
  static const io::LoadedModel model = random_llama(23, 256, "engine_hooks");
  return model;
}

std::string hook_plugin(const std::string& kind, const std::string& name) {
  return std::string(LOOM_HOOK_PLUGIN_DIR) + "/libloom_" + kind + "_" + name + ".so";
}
std::string fault_plugin(const std::string& kind) {
  return std::string(LOOM_FAULT_PLUGIN_DIR) + "/libloom_" + kind + "_faulty.so";
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("loom_hooks_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Two waves of requests sharing a 17-token system prompt (so whole blocks repeat), greedy, plus a
// few seeded sampled ones; the second wave arrives after the first has finished.
std::vector<std::vector<Request>> waves() {
  std::mt19937_64 rng(5);
  const std::vector<std::int32_t> system = {1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55};
  std::vector<std::vector<Request>> out(2);
  for (int i = 0; i < 16; ++i) {
    Request r;
    r.id = std::string("r").append(std::to_string(i));  // gcc 12's -Wrestrict misfires on "r" + ...
    r.prompt_token_ids = system;
    r.prompt_token_ids.resize(5 + rng() % (system.size() - 4));
    for (int extra = static_cast<int>(rng() % 9); extra > 0; --extra)
      r.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 250));
    r.params.max_tokens = 6 + static_cast<int>(rng() % 14);
    r.params.ignore_eos = true;
    if (i % 5 == 3) {
      r.params.temperature = 0.9;
      r.params.seed = 7 + i;
    }
    out[i % 2].push_back(r);
  }
  return out;
}

struct Outcome {
  std::map<std::string, std::vector<std::int32_t>> tokens;  // by request id
  std::map<std::string, std::string> errors;
  EngineStats stats;
  // The greedy requests' tokens: drafts leave them unchanged, while a sampled request's drafts
  // are verified by rejection sampling, which draws differently (and is exact in distribution:
  // tests/core/sampling/speculative_verify_test.cpp).
  std::map<std::string, std::vector<std::int32_t>> greedy_tokens() const {
    auto out = tokens;
    for (const auto& batch : waves())
      for (const Request& r : batch)
        if (r.params.temperature != 0.0) out.erase(r.id);
    return out;
  }
};

Outcome run(const std::vector<std::vector<Request>>& batches, std::vector<std::string> overrides) {
  overrides.push_back("kv.block_size=" + std::to_string(kBlockSize));
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, small_model(), std::nullopt);
  Outcome out;
  for (const auto& batch : batches) {
    for (const Request& r : batch) engine.submit(r);
    for (int steps = 0; engine.has_unfinished() && steps < 5000; ++steps)
      for (RequestResult& result : engine.step()) {
        out.tokens[result.id] = result.token_ids;
        if (!result.error.empty()) out.errors[result.id] = result.error;
      }
    EXPECT_FALSE(engine.has_unfinished());
  }
  out.stats = engine.stats();
  EXPECT_EQ(out.stats.kv.used_blocks, 0u) << "blocks still referenced after every request finished";
  return out;
}

std::vector<std::vector<std::string>> read_log(const fs::path& path) {
  std::vector<std::vector<std::string>> calls;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    calls.emplace_back(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
  }
  return calls;
}

std::size_t count(const std::vector<std::vector<std::string>>& calls, const std::string& name) {
  return static_cast<std::size_t>(
      std::count_if(calls.begin(), calls.end(), [&](const auto& c) { return c.at(0) == name; }));
}

std::vector<std::string> connector(const fs::path& log, bool corrupt = false) {
  return {"kv_connector.plugin=" + hook_plugin("kv_connector", "recording"), "kv_connector.log=" + log.string(),
          std::string("kv_connector.corrupt=") + (corrupt ? "true" : "false")};
}

// With the device prefix cache off, every shared prefix of the second wave can only come from
// the connector, which saved it while the first wave ran.
TEST(EngineHooks, ConnectorLoadsTheBlocksItSavedAndOutputsMatchARunWithoutIt) {
  const fs::path dir = fresh_dir("connector");
  const std::vector<std::string> base = {"kv.prefix_caching=false", "engine.max_num_batched_tokens=24"};
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : connector(dir / "calls.txt")) with.push_back(o);
  const Outcome hooked = run(waves(), with);
  EXPECT_EQ(hooked.tokens, plain.tokens);
  EXPECT_TRUE(hooked.errors.empty());
  EXPECT_GT(hooked.stats.loaded_tokens, 0u);
  EXPECT_GT(hooked.stats.saved_blocks, 0u);
  EXPECT_LT(hooked.stats.computed_prompt_tokens, plain.stats.computed_prompt_tokens);

  const auto calls = read_log(dir / "calls.txt");
  ASSERT_GT(count(calls, "start_load"), 0u);
  ASSERT_GT(count(calls, "save"), 0u);
  const auto layers = static_cast<std::size_t>(small_model().config.num_hidden_layers);
  ASSERT_GE(layers, 2u);
  std::size_t loads_waited = 0;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    if (c[0] == "start_load" || c[0] == "save") {  // seq first_token num_tokens blocks hashes
      const std::size_t first = std::stoul(c[2]), n = std::stoul(c[3]);
      EXPECT_EQ(first % kBlockSize, 0u) << c[0] << " of a partial block";
      EXPECT_EQ(n % kBlockSize, 0u) << c[0] << " of a partial block";
      EXPECT_EQ(std::stoul(c[4]), n / kBlockSize);
      EXPECT_EQ(std::stoul(c[5]), n / kBlockSize) << "one hash per block";
    }
    if (c[0] == "num_loadable_tokens") {  // tokens local -> loadable: whole blocks past the local prefix
      EXPECT_EQ(std::stoul(c[3]) % kBlockSize, 0u);
    }
    if (c[0] == "start_load" && (i == 0 || calls[i - 1][0] != "start_load")) {
      // After the step's loads, the CPU model waits for each layer in order, before the next step
      // asks anything (the connector copies a layer only then: the outputs show it came in time).
      std::size_t j = i + 1;
      while (j < calls.size() && calls[j][0] == "start_load") ++j;
      for (std::size_t layer = 0; layer < layers; ++layer, ++j) {
        ASSERT_LT(j, calls.size());
        ASSERT_EQ(calls[j][0], "wait_for_layer_load");
        EXPECT_EQ(std::stoul(calls[j][1]), layer);
      }
      ++loads_waited;
    }
  }
  EXPECT_GT(loads_waited, 0u);
  EXPECT_EQ(count(calls, "wait_for_layer_load"), loads_waited * layers) << "one wait per layer per step that loads";
  EXPECT_EQ(count(calls, "wait_for_load"), 0u) << "the CPU model runs layer by layer";
  // Every sequence is forgotten once it finishes (16 requests, one sequence each).
  EXPECT_GE(count(calls, "on_finished"), 16u);
}

// A connector still fetching a prompt's KV (kLoadPending) holds that sequence back: it is asked
// again at each step, steps in which every sequence waits are not a stall, and once it offers,
// the run loads and computes what it would have without the wait, three steps later.
TEST(EngineHooks, SequencesAConnectorIsStillFetchingWaitThenLoadWhatTheyWouldHave) {
  const fs::path dir = fresh_dir("pending");
  const std::vector<std::string> base = {"kv.prefix_caching=false", "engine.max_num_batched_tokens=24"};
  std::vector<std::string> direct = base, waiting = base;
  for (auto& o : connector(dir / "direct.txt")) direct.push_back(o);
  for (auto& o : connector(dir / "waiting.txt")) waiting.push_back(o);
  waiting.push_back("kv_connector.pending_asks=3");
  const Outcome plain = run(waves(), base);
  const Outcome hooked = run(waves(), direct);
  const Outcome waited = run(waves(), waiting);
  EXPECT_EQ(waited.tokens, plain.tokens);
  EXPECT_TRUE(waited.errors.empty());
  EXPECT_GT(waited.stats.loaded_tokens, 0u);
  EXPECT_EQ(waited.stats.loaded_tokens, hooked.stats.loaded_tokens);
  EXPECT_EQ(waited.stats.computed_prompt_tokens, hooked.stats.computed_prompt_tokens);
  // Each wave waits three steps with nothing scheduled (a pending sequence that ran would not).
  EXPECT_GE(waited.stats.steps, hooked.stats.steps + 6);
  const auto calls = read_log(dir / "waiting.txt");
  std::size_t pending = 0;
  for (const auto& c : calls) pending += c[0] == "num_loadable_tokens" && c.back() == "pending";
  EXPECT_GE(pending, 3u * 16u) << "three answers for each of the 16 prompts";
}

// A layer's wait that fails (after the forward has begun) costs the step: the sequences it was
// loading compute those tokens instead, and the outputs are those of a run without a connector.
TEST(EngineHooks, AFailedLayerWaitRedoesTheStepComputingWhatItWouldHaveLoaded) {
  const fs::path dir = fresh_dir("layer_wait");
  const std::vector<std::string> base = {"kv.prefix_caching=false", "engine.max_num_batched_tokens=24"};
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : connector(dir / "calls.txt")) with.push_back(o);
  with.push_back("kv_connector.fail_layer_wait=1");
  const Outcome hooked = run(waves(), with);
  EXPECT_EQ(hooked.tokens, plain.tokens);
  EXPECT_TRUE(hooked.errors.empty());
  const auto calls = read_log(dir / "calls.txt");
  std::size_t layer1_waits = 0;
  std::set<std::string> loaded_seqs;
  for (const auto& c : calls) {
    if (c[0] == "wait_for_layer_load" && c[1] == "1") ++layer1_waits;
    if (c[0] == "start_load") {
      EXPECT_TRUE(loaded_seqs.insert(c[1]).second) << "sequence " << c[1] << " loaded again";
    }
  }
  EXPECT_GT(layer1_waits, 0u);
  EXPECT_EQ(hooked.stats.failed_steps, layer1_waits) << "each wait for layer 1 failed its step";
}

TEST(EngineHooks, CorruptedLoadsChangeTheOutputsSoLoadedKvIsReallyRead) {
  const fs::path dir = fresh_dir("corrupt");
  std::vector<std::string> base = {"kv.prefix_caching=false", "engine.max_num_batched_tokens=24"};
  const Outcome plain = run(waves(), base);
  for (auto& o : connector(dir / "calls.txt", /*corrupt=*/true)) base.push_back(o);
  const Outcome corrupted = run(waves(), base);
  EXPECT_GT(corrupted.stats.loaded_tokens, 0u);
  EXPECT_NE(corrupted.tokens, plain.tokens);
}

TEST(EngineHooks, EvictedBlocksReachTheConnectorBeforeTheyAreOverwritten) {
  const fs::path dir = fresh_dir("evicted");
  // No output reserve (admission as prompts fit), so that the small pool preempts.
  const std::vector<std::string> base = {"kv.num_blocks=24", "engine.max_num_batched_tokens=12",
                                         "scheduler.output_reserve=0"};
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : connector(dir / "calls.txt")) with.push_back(o);
  const Outcome hooked = run(waves(), with);
  EXPECT_EQ(hooked.tokens, plain.tokens);
  EXPECT_GT(hooked.stats.kv.evictions, 0u);
  EXPECT_GT(hooked.stats.preemptions, 0u) << "the pool should be small enough to preempt";
  EXPECT_GT(count(read_log(dir / "calls.txt"), "on_evicted"), 0u);
}

// The script holds each request's true continuation, with the third draft made wrong: every
// verification accepts at most two drafts and rejects the rest, whose slots are trimmed.
std::vector<std::string> drafter(const fs::path& dir, const Outcome& truth, int wrong_at) {
  std::ofstream script(dir / "script.txt");
  for (const auto& wave : waves())
    for (const Request& r : wave) {
      for (std::int32_t t : r.prompt_token_ids) script << t << ' ';
      for (std::int32_t t : truth.tokens.at(r.id)) script << t << ' ';
      script << '\n';
    }
  return {"speculative.plugin=" + hook_plugin("drafter", "script"), "speculative.num_draft_tokens=4",
          "speculative.script=" + (dir / "script.txt").string(), "speculative.wrong_at=" + std::to_string(wrong_at),
          "speculative.log=" + (dir / "calls.txt").string()};
}

TEST(EngineHooks, DraftsAreVerifiedAndGreedyOutputsMatchARunWithoutThem) {
  const fs::path dir = fresh_dir("drafter");
  const std::vector<std::string> base = {"engine.max_num_batched_tokens=24"};
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : drafter(dir, plain, 2)) with.push_back(o);
  const Outcome hooked = run(waves(), with);
  EXPECT_EQ(hooked.greedy_tokens(), plain.greedy_tokens());
  EXPECT_EQ(hooked.tokens.size(), plain.tokens.size());
  EXPECT_GT(hooked.stats.accepted_draft_tokens, 0u);
  EXPECT_GT(hooked.stats.draft_tokens, hooked.stats.accepted_draft_tokens) << "the wrong third draft is rejected";
  EXPECT_LT(hooked.stats.steps, plain.stats.steps) << "accepted drafts save steps";

  const auto calls = read_log(dir / "calls.txt");
  std::map<std::string, std::size_t> proposed;  // seq -> drafts of its last proposal
  for (const auto& c : calls) {
    if (c[0] == "propose") proposed[c[1]] = std::stoul(c[3]);
    if (c[0] == "on_accepted") {  // seq accepted: never more than proposed, never past the wrong one
      ASSERT_TRUE(proposed.contains(c[1])) << "on_accepted before any proposal for sequence " << c[1];
      EXPECT_LE(std::stoul(c[2]), std::min<std::size_t>(proposed[c[1]], 2));
    }
  }
  EXPECT_GT(count(calls, "on_accepted"), 0u);
  EXPECT_GE(count(calls, "on_finished"), 16u);
}

TEST(EngineHooks, DraftsThatAreAlwaysWrongChangeNoGreedyOutput) {
  const fs::path dir = fresh_dir("wrong_drafts");
  const Outcome plain = run(waves(), {});
  const Outcome hooked =
      run(waves(), {"speculative.plugin=" + hook_plugin("drafter", "script"), "speculative.tokens=5 6 7",
                    "speculative.log=" + (dir / "calls.txt").string()});
  EXPECT_EQ(hooked.greedy_tokens(), plain.greedy_tokens());
  EXPECT_EQ(hooked.tokens.size(), plain.tokens.size());
  EXPECT_GT(hooked.stats.draft_tokens, 0u);
  // The engine turns speculation down for sequences whose drafts keep failing: three drafts a
  // step would be about three per generated token; halving to a pausing single draft is far less.
  std::uint64_t generated = 0;
  for (const auto& [id, tokens] : hooked.tokens) generated += tokens.size();
  EXPECT_LT(hooked.stats.draft_tokens, generated) << hooked.stats.draft_tokens << " drafts for " << generated
                                                  << " tokens";
  // Per sequence, the drafts asked for never grow while none is accepted.
  std::map<std::string, std::size_t> last;
  for (const auto& c : read_log(dir / "calls.txt")) {
    if (c[0] != "propose") continue;
    const std::size_t n = std::stoul(c[3]);
    if (last.contains(c[1])) {
      EXPECT_LE(n, last[c[1]]) << "sequence " << c[1];
    }
    last[c[1]] = n;
  }
}

// [speculative] adaptive = false: every step asks for num_draft_tokens whatever was accepted
// (what measures a verify step's cost), and outputs stay plain decoding's.
TEST(EngineHooks, WithoutAdaptationAlwaysWrongDraftsAreAskedForInFullEveryStep) {
  const fs::path dir = fresh_dir("fixed_drafts");
  const Outcome plain = run(waves(), {});
  const Outcome hooked =
      run(waves(), {"speculative.plugin=" + hook_plugin("drafter", "script"), "speculative.tokens=5 6 7",
                    "speculative.num_draft_tokens=3", "speculative.adaptive=false",
                    "speculative.log=" + (dir / "calls.txt").string()});
  EXPECT_EQ(hooked.greedy_tokens(), plain.greedy_tokens());
  std::size_t proposals = 0;
  for (const auto& c : read_log(dir / "calls.txt")) {
    if (c[0] != "propose") continue;
    ++proposals;
    EXPECT_EQ(std::stoul(c[3]), 3u) << "sequence " << c[1];
  }
  EXPECT_GT(proposals, 0u);
}

// Both hooks at once, with a pool small enough to preempt, chunked prefill, and an attention
// backend that throws at random (failed steps are redone): outputs still match, nothing leaks.
TEST(EngineHooks, ConnectorAndDrafterTogetherSurvivePreemptionAndFailedSteps) {
  const fs::path dir = fresh_dir("together");
  const std::vector<std::string> base = {"kv.num_blocks=16", "engine.max_num_batched_tokens=12",
                                         "scheduler.output_reserve=0"};  // a pool that preempts
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : connector(dir / "connector.txt")) with.push_back(o);
  for (auto& o : drafter(dir, plain, 3)) with.push_back(o);
  for (const std::string& o :
       {"attention.plugin=" + fault_plugin("attention"),
        "attention.inner=" + std::string(LOOM_BINARY_DIR) + "/lib/loom/plugins/libloom_attention_paged.so",
        std::string("attention.seed=3"), std::string("attention.throw_rate=0.05")})
    with.push_back(o);
  const Outcome hooked = run(waves(), with);
  EXPECT_EQ(hooked.greedy_tokens(), plain.greedy_tokens());
  EXPECT_EQ(hooked.tokens.size(), plain.tokens.size());
  EXPECT_GT(hooked.stats.failed_steps, 0u);
  EXPECT_GT(hooked.stats.preemptions, 0u);
  EXPECT_GT(hooked.stats.accepted_draft_tokens, 0u);
}

// A request that fails (the pool can never hold it) is forgotten by the plugins like one that
// finishes, and the others go on.
TEST(EngineHooks, ARequestThatFailsIsForgottenAndTheOthersGoOn) {
  const fs::path dir = fresh_dir("failed_request");
  std::vector<std::vector<Request>> batches = waves();
  Request huge;
  huge.id = "huge";
  huge.prompt_token_ids.assign(150, 9);
  huge.params.max_tokens = 60;
  batches[0].insert(batches[0].begin() + 3, huge);
  std::vector<std::string> with = {"kv.num_blocks=40"};
  for (auto& o : connector(dir / "calls.txt")) with.push_back(o);
  const Outcome hooked = run(batches, with);
  EXPECT_EQ(hooked.errors.size(), 1u);
  EXPECT_CONTAINS(hooked.errors.at("huge"), "blocks");
  EXPECT_EQ(hooked.tokens.size(), 17u);
  EXPECT_GE(count(read_log(dir / "calls.txt"), "on_finished"), 17u);
}

std::vector<std::string> ranks(const fs::path& log, int n, bool corrupt = false) {
  return {"parallel.plugin=" + hook_plugin("parallel", "ranks"), "parallel.size=" + std::to_string(n),
          "parallel.log=" + log.string(), std::string("parallel.corrupt=") + (corrupt ? "true" : "false")};
}

// Pipeline stages on the CPU: each rank runs its layers and hands the residual stream to the
// next through the plugin, through chunked prefill and preemption, with the tokens of one rank.
TEST(EngineHooks, TwoPipelineRanksOnTheCpuGiveTheTokensOfOneAndPassEveryStepsActivations) {
  const fs::path dir = fresh_dir("pipeline");
  const std::vector<std::string> base = {"kv.num_blocks=16", "engine.max_num_batched_tokens=12",
                                         "scheduler.output_reserve=0"};  // a pool that preempts
  const Outcome plain = run(waves(), base);
  std::vector<std::string> with = base;
  for (auto& o : ranks(dir / "calls.txt", 2)) with.push_back(o);
  const Outcome split = run(waves(), with);
  EXPECT_EQ(split.tokens, plain.tokens);
  EXPECT_TRUE(split.errors.empty());
  EXPECT_GT(split.stats.preemptions, 0u);

  const auto calls = read_log(dir / "calls.txt");
  ASSERT_GE(calls.size(), 2u);
  // Both ranks set up at once, each on its own thread (the plugin's init_rank waits for both).
  EXPECT_EQ(std::set<std::vector<std::string>>({calls[0], calls[1]}),
            (std::set<std::vector<std::string>>{{"init_rank", "0"}, {"init_rank", "1"}}));
  // Then, every step, for each of its micro-batches (one per stage when the step has two
  // sequences or more): rank 0 sends [T, hidden] and rank 1 receives that shape, in the same
  // order; the micro-batches' tokens add up to the step's.
  std::vector<std::string> sent, received;
  for (std::size_t i = 2; i < calls.size(); ++i) {
    ASSERT_EQ(calls[i].size(), 4u);
    EXPECT_EQ(calls[i][3], "64") << "the tiny model's hidden size";
    if (calls[i][0] == "send_next") {
      EXPECT_EQ(calls[i][1], "0");
      sent.push_back(calls[i][2]);
    } else {
      EXPECT_EQ(calls[i], (std::vector<std::string>{"recv_prev", "1", calls[i][2], "64"}));
      received.push_back(calls[i][2]);
    }
  }
  EXPECT_EQ(sent, received);
  EXPECT_GT(sent.size(), split.stats.steps) << "some steps were cut in two micro-batches";
  EXPECT_LE(sent.size(), 2 * split.stats.steps);
}

// A rank whose set-up fails stops the engine's start with that rank's message (the other rank,
// waiting for it in init_rank, gives up): an error, not a hang or a crash as the plugin unloads.
TEST(EngineHooks, AParallelPluginWhoseInitRankThrowsFailsTheEngineStartWithItsMessage) {
  const fs::path dir = fresh_dir("init_fails");
  std::vector<std::string> overrides = ranks(dir / "calls.txt", 2);
  overrides.push_back("parallel.init_fails=true");
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  const std::string message = message_of<DeviceError>([&] { Engine(config, registry, small_model(), std::nullopt); });
  EXPECT_CONTAINS(message, "parallel.init_rank() failed: parallel/ranks: rank 1 could not join the group");
}

TEST(EngineHooks, ActivationsLostBetweenPipelineRanksChangeTheOutputs) {
  const fs::path dir = fresh_dir("pipeline_corrupt");
  const Outcome plain = run(waves(), {});
  const Outcome lost = run(waves(), ranks(dir / "calls.txt", 2, /*corrupt=*/true));
  EXPECT_NE(lost.tokens, plain.tokens);
}

TEST(EngineHooks, ParallelLayoutsThatDoNotRunAreRefusedAtStartUpNamingTheRank) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto refusal = [&](std::vector<std::string> overrides) {
    Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
    return message_of<ConfigError>([&] { Engine(config, registry, small_model(), std::nullopt); });
  };
  const fs::path dir = fresh_dir("ranks_refused");
  // Three stages of a two-layer model leave rank 0 without a layer.
  EXPECT_CONTAINS(refusal(ranks(dir / "calls.txt", 3)), "gives rank 0 layers [0, 0) of 2");
  auto heads = ranks(dir / "calls.txt", 2);
  heads.push_back("parallel.split=heads");
  // Half the query heads each, but every KV head: rank 0's heads read KV head 0 alone.
  EXPECT_CONTAINS(refusal(heads),
                  "gives rank 0 heads [0, 2) of 4 and KV heads [0, 2) of 2, but those query heads read KV heads "
                  "[0, 1) of 2");
  EXPECT_TRUE(read_log(dir / "calls.txt").empty()) << "no rank initialised when the layout is refused";
}

TEST(EngineHooks, AnAttentionBackendIsAskedWhereItRunsBeforeThePoolIsSizedAndARefusalNamesTheLine) {
  const fs::path dir = fresh_dir("picky");
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto config_of = [&](const std::string& runs_on) {
    const std::vector<std::string> overrides = {"attention.plugin=" + hook_plugin("attention", "picky"),
                                                "attention.runs_on=" + runs_on,
                                                "attention.log=" + (dir / "calls.txt").string()};
    return load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  };
  const Config nowhere = config_of("nowhere");
  const std::string refusal =
      message_of<ConfigError>([&] { Engine(nowhere, registry, small_model(), std::nullopt); });
  EXPECT_CONTAINS(refusal, "[attention] plugin \"" + hook_plugin("attention", "picky") + "\" cannot run on cpu");
  EXPECT_CONTAINS(refusal, "fp32 KV");
  EXPECT_CONTAINS(refusal, "--set attention.plugin");  // the origin of the choice
  const auto calls = read_log(dir / "calls.txt");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"constructed", "num_blocks", "0"}));
  EXPECT_EQ(calls[1], (std::vector<std::string>{"supports", "cpu", "fp32"}));

  const Config cpu = config_of("cpu");
  EXPECT_NO_THROW(Engine(cpu, registry, small_model(), std::nullopt));
}

TEST(EngineHooks, LoomPluginsListsEverySevenKindsSayingWhichHaveNone) {
  const LoomRun run = run_loom("plugins");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* kind : {"scheduler", "kv_allocator", "evictor", "attention", "parallel", "kv_connector", "drafter"})
    EXPECT_CONTAINS(run.output, std::string("\n") + kind);
  // A kind with no plugin found is listed as such: the binary copied into a prefix without plugins.
  const fs::path prefix = fs::temp_directory_path() / ("loom_no_plugins_" + std::to_string(::getpid()));
  fs::create_directories(prefix / "bin");
  fs::copy_file(fs::path(LOOM_BINARY_DIR) / "bin" / "loom", prefix / "bin" / "loom",
                fs::copy_options::overwrite_existing);
  std::string listing;
  if (FILE* pipe = popen(("env -u LOOM_PLUGIN_PATH " + (prefix / "bin" / "loom").string() + " plugins 2>&1").c_str(), "r")) {
    char buffer[4096];
    while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) listing.append(buffer, n);
    pclose(pipe);
  }
  fs::remove_all(prefix);
  EXPECT_CONTAINS(listing, "kv_connector  (none installed)");
  EXPECT_CONTAINS(listing, "drafter       (none installed)");
}

}  // namespace
}  // namespace loom::testing
