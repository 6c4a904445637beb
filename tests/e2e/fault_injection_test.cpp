// Fault injection (docs/reliability.md): the engine serves a batch of good and bad requests
// while its plugins fail at random — KV block allocations refused, and throws from the
// scheduler, the allocator and the attention backend, before or after the real work, and
// results that break the contract: block tables too short, plans naming unknown sequences
// (tests/e2e/fault_plugins). Required, for every seed:
//  * each bad request ends with finish_reason "error" and a message saying what is wrong;
//  * every good request ends exactly as in a fault-free run of the good requests alone;
//  * no KV block stays referenced: every block is free or cached at the end;
//  * the faults really fired (each kind), and every injected throw was contained exactly once.
// And a plugin that never stops failing ends every request it touches with an error within a
// bounded number of steps, instead of livelocking the engine or taking the process down.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "support/expect_error.h"
#include "support/random_llama.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kContext = 256;  // the model's context, tokens

const io::LoadedModel& small_model() {
  static const io::LoadedModel model = random_llama(11, kContext, "fault_injection");
  return model;
}

std::string real_plugin(const std::string& kind, const std::string& name) {
  return std::string(LOOM_BINARY_DIR) + "/lib/loom/plugins/libloom_" + kind + "_" + name + ".so";
}
std::string faulty_plugin(const std::string& kind) {
  return std::string(LOOM_FAULT_PLUGIN_DIR) + "/libloom_" + kind + "_faulty.so";
}

// A small pool and token budget, so that preemption, eviction and chunked prefill all happen.
const std::vector<std::string> kPool = {"kv.block_size=4", "kv.num_blocks=48", "engine.max_num_batched_tokens=24"};

// Good requests: shared prefixes (prefix-cache hits), greedy and seeded sampling, n = 2.
std::vector<Request> good_requests(std::uint64_t seed, int count = 18, int max_tokens = 16) {
  std::mt19937_64 rng(seed);
  const std::vector<std::int32_t> system = {1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49};
  std::vector<Request> requests;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = "good-" + std::to_string(i);
    r.prompt_token_ids = system;
    r.prompt_token_ids.resize(1 + rng() % system.size());
    for (int extra = static_cast<int>(rng() % 12); extra > 0; --extra)
      r.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 250));
    r.params.max_tokens = 1 + static_cast<int>(rng() % max_tokens);
    r.params.ignore_eos = true;
    if (i % 3 == 1) {  // sampled: an explicit seed, so the reference run draws the same stream
      r.params.temperature = 0.8;
      r.params.seed = 100 + i;
    }
    if (i == 4) r.params.n = 2;
    requests.push_back(r);
  }
  return requests;
}

// Bad requests, each with the words its error must contain.
std::vector<std::pair<Request, std::string>> bad_requests() {
  std::vector<std::pair<Request, std::string>> bad;
  auto add = [&](const std::string& id, std::vector<std::int32_t> prompt, const std::string& expected) -> Request& {
    Request r;
    r.id = id;
    r.prompt_token_ids = std::move(prompt);
    r.params.max_tokens = 8;
    bad.emplace_back(r, expected);
    return bad.back().first;
  };
  add("too-long-for-the-model", std::vector<std::int32_t>(kContext + 40, 7), "the prompt has 296 tokens");
  add("too-long-for-the-pool", std::vector<std::int32_t>(180, 9), "blocks").params.max_tokens = 60;
  add("empty-prompt", {}, "the prompt is empty");
  add("negative-token-id", {1, 5, -1}, "prompt token id -1 is outside the vocabulary [0, 256)");
  add("token-id-past-the-vocabulary", {1, 256}, "prompt token id 256 is outside the vocabulary [0, 256)");
  add("negative-max-tokens", {1, 5, 6}, "'max_tokens' = -3").params.max_tokens = -3;
  add("nan-temperature", {1, 5, 6}, "'temperature' = nan").params.temperature = std::numeric_limits<double>::quiet_NaN();
  add("infinite-temperature", {1, 5, 6}, "'temperature' = inf").params.temperature =
      std::numeric_limits<double>::infinity();
  return bad;
}

struct Outcome {
  std::map<std::string, RequestResult> results;  // "id#index"
  EngineStats stats;
  int steps = 0;
};

Outcome run(const std::vector<Request>& requests, const std::vector<std::string>& overrides, int max_steps = 100000) {
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, small_model(), std::nullopt);
  for (const Request& r : requests) engine.submit(r);
  Outcome out;
  while (engine.has_unfinished() && out.steps < max_steps) {
    ++out.steps;
    for (RequestResult& result : engine.step()) {
      const std::string key = result.id + "#" + std::to_string(result.index);
      EXPECT_EQ(out.results.count(key), 0u) << "duplicated " << key;
      out.results[key] = std::move(result);
    }
  }
  EXPECT_FALSE(engine.has_unfinished()) << "still unfinished after " << max_steps << " steps";
  out.stats = engine.stats();
  return out;  // the engine, and with it every plugin, is destroyed here: fault reports are written
}

// Every block free or cached, none referenced; no release that never happened.
void expect_no_leaks(const EngineStats& stats) {
  EXPECT_EQ(stats.kv.used_blocks, 0u) << "blocks still referenced after every request finished";
  EXPECT_EQ(stats.kv.free_blocks + stats.kv.cached_blocks, stats.num_blocks);
  EXPECT_EQ(stats.unreleased_sequences, 0u);
}

// The counts a faulty plugin wrote: "<method> <throw|fail>" -> count.
std::map<std::string, std::uint64_t> read_report(const fs::path& path) {
  std::map<std::string, std::uint64_t> counts;
  std::ifstream in(path);
  std::string method, kind;
  std::uint64_t count;
  while (in >> method >> kind >> count) counts[method + " " + kind] = count;
  return counts;
}

std::uint64_t total(const std::map<std::string, std::uint64_t>& counts, const std::string& kind) {
  std::uint64_t sum = 0;
  for (const auto& [key, count] : counts)
    if (key.ends_with(" " + kind)) sum += count;
  return sum;
}

// The three faulty plugins around the real ones, each with its own seed, rate and report file.
std::vector<std::string> faulty_overrides(std::uint64_t seed, const fs::path& reports, double reserve_fail,
                                          double allocator_throw, double scheduler_throw, double attention_throw) {
  auto wrap = [&](const std::string& section, const std::string& kind, const std::string& inner, double rate,
                  std::uint64_t salt) {
    return std::vector<std::string>{
        section + ".plugin=" + faulty_plugin(kind), section + ".inner=" + real_plugin(kind, inner),
        section + ".seed=" + std::to_string(seed * 10 + salt), section + ".throw_rate=" + std::to_string(rate),
        section + ".report=" + (reports / (kind + ".txt")).string()};
  };
  std::vector<std::string> o = kPool;
  for (auto part : {wrap("kv", "kv_allocator", "paged", allocator_throw, 1),
                    wrap("scheduler", "scheduler", "fcfs", scheduler_throw, 2),
                    wrap("attention", "attention", "paged", attention_throw, 3)})
    o.insert(o.end(), part.begin(), part.end());
  o.push_back("kv.fail_rate=" + std::to_string(reserve_fail));
  return o;
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("loom_faults_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

class RandomFaults : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(RandomFaults, BadRequestsFailAloneAndGoodOnesEndExactlyAsWithoutFaults) {
  const std::uint64_t seed = GetParam();
  const std::vector<Request> good = good_requests(seed, 64, 32);
  const Outcome reference = run(good, kPool);
  expect_no_leaks(reference.stats);
  ASSERT_EQ(reference.stats.plugin_failures, 0u);

  // The same good requests with the bad ones spread among them, under faults.
  std::vector<Request> batch = good;
  std::mt19937_64 rng(seed);
  const auto bad = bad_requests();
  for (const auto& [request, expected] : bad)
    batch.insert(batch.begin() + static_cast<std::ptrdiff_t>(rng() % (batch.size() + 1)), request);
  const fs::path reports = fresh_dir("random_" + std::to_string(seed));
  // Rates per call: about one step in five fails, so giving up (8 failed steps in a row) is
  // out of reach, while over a run of a few hundred steps each kind of fault is expected to fire
  // ten times or more.
  std::vector<std::string> overrides = faulty_overrides(seed, reports, 0.15, 0.004, 0.06, 0.02);
  overrides.push_back("kv.bad_table_rate=0.01");         // a block table too short for the step
  overrides.push_back("scheduler.bad_plan_rate=0.02");   // a plan naming a sequence that does not exist
  const Outcome faulty = run(batch, overrides);

  ASSERT_EQ(faulty.results.size(), reference.results.size() + bad.size());
  for (const auto& [request, expected] : bad) {
    const RequestResult& result = faulty.results.at(request.id + "#0");
    EXPECT_EQ(result.finish_reason, "error") << request.id;
    EXPECT_CONTAINS(result.error, expected);
  }
  for (const auto& [key, want] : reference.results) {
    const RequestResult& got = faulty.results.at(key);
    EXPECT_EQ(got.finish_reason, want.finish_reason) << key << ": " << got.error;
    EXPECT_EQ(got.token_ids, want.token_ids) << key;
  }
  expect_no_leaks(faulty.stats);

  const auto allocator = read_report(reports / "kv_allocator.txt");
  const auto scheduler = read_report(reports / "scheduler.txt");
  const auto attention = read_report(reports / "attention.txt");
  const std::uint64_t reserve_failures = total(allocator, "fail");
  const std::uint64_t throws = total(allocator, "throw") + total(scheduler, "throw") + total(attention, "throw");
  EXPECT_GT(reserve_failures, 0u) << "no KV allocation was made to fail";
  EXPECT_GT(total(allocator, "throw"), 0u) << "the allocator never threw";
  EXPECT_GT(total(scheduler, "throw"), 0u) << "the scheduler never threw";
  EXPECT_GT(total(attention, "throw"), 0u) << "the attention backend never threw";
  EXPECT_GT(total(allocator, "bad"), 0u) << "no block table was cut short";
  EXPECT_GT(total(scheduler, "bad"), 0u) << "no plan named an unknown sequence";
  // Every injected throw is caught, once; so is every bad plan (check_plan throws inside the call).
  EXPECT_EQ(faulty.stats.plugin_failures, throws + total(scheduler, "bad"));
  EXPECT_GT(faulty.stats.failed_steps, 0u);
  std::cout << "seed " << seed << ": " << reserve_failures << " failed KV reservations, "
            << total(allocator, "throw") << " allocator throws, " << total(scheduler, "throw")
            << " scheduler throws, " << total(attention, "throw") << " attention throws, "
            << total(allocator, "bad") << " short block tables, " << total(scheduler, "bad") << " bad plans; "
            << faulty.stats.failed_steps << " failed steps, " << faulty.stats.preemptions << " preemptions, "
            << faulty.steps << " steps (fault-free: " << reference.steps << ")\n";
  fs::remove_all(reports);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomFaults, ::testing::Values(1u, 2u, 3u, 4u, 5u));

TEST(PersistentFaults, ASchedulerThatAlwaysThrowsEndsEveryRequestWithAnErrorInBoundedSteps) {
  const fs::path reports = fresh_dir("scheduler_always");
  std::vector<Request> requests = good_requests(7);
  const Outcome r = run(requests, faulty_overrides(7, reports, 0, 0, 1.0, 0), 100);
  std::size_t sequences = 0;
  for (const Request& request : requests) sequences += static_cast<std::size_t>(std::max(1, request.params.n));
  ASSERT_EQ(r.results.size(), sequences);
  for (const auto& [key, result] : r.results) {
    EXPECT_EQ(result.finish_reason, "error") << key;
    EXPECT_CONTAINS(result.error, "scheduler.schedule() failed: injected fault: scheduler.schedule() threw");
    EXPECT_CONTAINS(result.error, "8 engine steps in a row failed");
  }
  EXPECT_EQ(r.steps, 8);
  EXPECT_EQ(r.stats.failed_steps, 8u);
  expect_no_leaks(r.stats);
  fs::remove_all(reports);
}

TEST(PersistentFaults, ACommitThatAlwaysThrowsFailsEachRequestAloneAfterFourTries) {
  const fs::path reports = fresh_dir("commit_always");
  std::vector<Request> requests = good_requests(8);
  std::vector<std::string> overrides = faulty_overrides(8, reports, 0, 1.0, 0, 0);
  overrides.push_back("kv.throw_calls=commit");
  const Outcome r = run(requests, overrides, 2000);
  EXPECT_FALSE(r.results.empty());
  for (const auto& [key, result] : r.results) {
    EXPECT_EQ(result.finish_reason, "error") << key;
    EXPECT_CONTAINS(result.error, "kv_allocator.commit() failed: injected fault: kv_allocator.commit() threw");
    EXPECT_CONTAINS(result.error, "4 times in a row for this request");
    EXPECT_TRUE(result.token_ids.empty()) << key << ": no step of it ever counted";
  }
  EXPECT_EQ(r.stats.failed_steps, 0u) << "a per-sequence failure never fails the whole step";
  EXPECT_EQ(total(read_report(reports / "kv_allocator.txt"), "throw"), r.stats.plugin_failures);
  expect_no_leaks(r.stats);
  fs::remove_all(reports);
}

TEST(PersistentFaults, KvAllocationsThatAlwaysFailEndEveryRequestWithAnError) {
  const fs::path reports = fresh_dir("reserve_always");
  const Outcome r = run(good_requests(9), faulty_overrides(9, reports, 1.0, 0, 0, 0), 100);
  EXPECT_FALSE(r.results.empty());
  for (const auto& [key, result] : r.results) {
    EXPECT_EQ(result.finish_reason, "error") << key;
    EXPECT_CONTAINS(result.error, "the scheduler made no progress");
  }
  EXPECT_EQ(r.steps, 8);
  EXPECT_GT(total(read_report(reports / "kv_allocator.txt"), "fail"), 0u);
  expect_no_leaks(r.stats);
  fs::remove_all(reports);
}

TEST(PersistentFaults, AnAttentionBackendThatThrowsMidForwardLeavesNoStaleKv) {
  // forward() throws at any layer, before or after writing that layer's KV: the step's KV is
  // then written for some layers and not others. Outputs must still equal the fault-free ones.
  const fs::path reports = fresh_dir("attention_often");
  const std::vector<Request> good = good_requests(10);
  const Outcome reference = run(good, kPool);
  std::vector<std::string> overrides = faulty_overrides(10, reports, 0, 0, 0, 0.1);
  overrides.push_back("attention.throw_calls=forward");
  const Outcome r = run(good, overrides);
  for (const auto& [key, want] : reference.results) {
    EXPECT_EQ(r.results.at(key).finish_reason, want.finish_reason) << key << ": " << r.results.at(key).error;
    EXPECT_EQ(r.results.at(key).token_ids, want.token_ids) << key;
  }
  EXPECT_GT(total(read_report(reports / "attention.txt"), "throw"), 0u);
  expect_no_leaks(r.stats);
  fs::remove_all(reports);
}

}  // namespace
}  // namespace loom::testing
