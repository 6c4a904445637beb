// Log-probabilities from the CPU engine on the real stories260K model against a float64 forward
// pass (reference_forward) of prompt + output: each generated token's log-probability and the
// top n, greedy and sampled, with n-gram drafts and preemption; and asking for them changes no
// token.
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "reference_forward.h"
#include "support/stories260k.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

std::vector<Request> requests(int count, int logprobs, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Request> out;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = "r" + std::to_string(i);
    r.prompt_token_ids = {1};
    for (int j = 0; j < 4 + static_cast<int>(rng() % 20); ++j)
      r.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 500));
    r.params.max_tokens = 12 + static_cast<int>(rng() % 20);
    r.params.ignore_eos = true;
    r.params.logprobs = logprobs;
    if (i % 2 == 1) {
      r.params.temperature = 0.8;
      r.params.seed = 40 + i;
    }
    out.push_back(r);
  }
  return out;
}

std::map<std::string, RequestResult> run(const std::vector<Request>& batch, const std::vector<std::string>& overrides) {
  if (!fs::exists(test_models_dir() / "stories260K.bin")) {
    ADD_FAILURE() << "shared models not found at " << test_models_dir() << "; set LOOM_TEST_MODELS";
    return {};
  }
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, stories260k(), std::nullopt);
  for (const Request& r : batch) engine.submit(r);
  std::map<std::string, RequestResult> out;
  for (int steps = 0; engine.has_unfinished() && steps < 100000; ++steps)
    for (RequestResult& result : engine.step()) {
      EXPECT_NE(result.finish_reason, "error") << result.error;
      out[result.id] = std::move(result);
    }
  return out;
}

// Every token's log-probability and top n against log softmax of the float64 logits at its position.
void expect_reference_logprobs(const Request& request, const RequestResult& result, int top_n) {
  ASSERT_TRUE(result.logprobs.has_value()) << request.id;
  ASSERT_EQ(result.logprobs->size(), result.token_ids.size()) << request.id;
  std::vector<std::int32_t> tokens = request.prompt_token_ids;
  tokens.insert(tokens.end(), result.token_ids.begin(), result.token_ids.end());
  const auto logits = reference_logits(stories260k(), tokens);
  for (std::size_t i = 0; i < result.token_ids.size(); ++i) {
    const std::vector<double>& row = logits[request.prompt_token_ids.size() - 1 + i];
    double max = -INFINITY, sum = 0;
    for (double x : row) max = std::max(max, x);
    for (double x : row) sum += std::exp(x - max);
    auto reference = [&](std::int32_t id) { return row[id] - max - std::log(sum); };
    const TokenLogprobs& got = (*result.logprobs)[i];
    EXPECT_EQ(got.token, result.token_ids[i]);
    EXPECT_NEAR(got.logprob, reference(got.token), 1e-4) << request.id << " token " << i;
    ASSERT_EQ(got.top.size(), static_cast<std::size_t>(top_n));
    for (const auto& [id, logprob] : got.top) EXPECT_NEAR(logprob, reference(id), 1e-4) << request.id << " top " << id;
    if (request.params.temperature == 0.0) {
      EXPECT_EQ(got.top.front().first, got.token) << "greedy picks the top";
    }
  }
}

TEST(Logprobs, EachTokensAndTheTopFiveMatchAFloat64ForwardGreedyAndSampled) {
  const auto batch = requests(8, 5, 1);
  const auto with = run(batch, {});
  for (const Request& r : batch) expect_reference_logprobs(r, with.at(r.id), 5);
}

TEST(Logprobs, AskingForThemChangesNoTokenWithDraftsOrUnderPreemption) {
  const auto batch = requests(12, 3, 2), without = requests(12, -1, 2);
  const auto plain = run(without, {});
  const std::vector<std::vector<std::string>> variants = {
      {},
      {"speculative.plugin=ngram", "speculative.num_draft_tokens=3"},
      {"kv.block_size=4", "kv.num_blocks=40", "engine.max_num_batched_tokens=16", "scheduler.output_reserve=0"}};
  for (const auto& overrides : variants) {
    const auto with = run(batch, overrides);
    for (const Request& r : batch) {
      EXPECT_EQ(with.at(r.id).token_ids, plain.at(r.id).token_ids) << r.id;
      EXPECT_FALSE(plain.at(r.id).logprobs.has_value());
      expect_reference_logprobs(r, with.at(r.id), 3);
    }
  }
}

// Each prompt token after the first against log softmax of the float64 logits at the position
// before it.
void expect_reference_prompt_logprobs(const Request& request, const RequestResult& result, int top_n) {
  ASSERT_TRUE(result.prompt_logprobs.has_value()) << request.id;
  const std::vector<std::int32_t>& prompt = request.prompt_token_ids;
  ASSERT_EQ(result.prompt_logprobs->size(), prompt.size() - 1) << request.id;
  const auto logits = reference_logits(stories260k(), prompt);
  for (std::size_t i = 0; i + 1 < prompt.size(); ++i) {
    const std::vector<double>& row = logits[i];
    double max = -INFINITY, sum = 0;
    for (double x : row) max = std::max(max, x);
    for (double x : row) sum += std::exp(x - max);
    auto reference = [&](std::int32_t id) { return row[id] - max - std::log(sum); };
    const TokenLogprobs& got = (*result.prompt_logprobs)[i];
    EXPECT_EQ(got.token, prompt[i + 1]);
    EXPECT_NEAR(got.logprob, reference(got.token), 1e-4) << request.id << " prompt token " << i + 1;
    ASSERT_EQ(got.top.size(), static_cast<std::size_t>(top_n));
    for (const auto& [id, logprob] : got.top) EXPECT_NEAR(logprob, reference(id), 1e-4) << request.id << " top " << id;
  }
}

std::vector<Request> with_prompt_logprobs(std::vector<Request> batch, int top_n, int max_tokens) {
  for (Request& r : batch) {
    r.params.prompt_logprobs = top_n;
    r.params.max_tokens = max_tokens;
  }
  return batch;
}

TEST(PromptLogprobs, EachPromptTokenMatchesAFloat64ForwardInChunksAndWithoutOutput) {
  const auto batch = with_prompt_logprobs(requests(6, -1, 3), 2, 4);
  for (const auto& overrides :
       std::vector<std::vector<std::string>>{{}, {"engine.max_num_batched_tokens=5"}, {"engine.max_num_seqs=1"}}) {
    const auto got = run(batch, overrides);
    for (const Request& r : batch) expect_reference_prompt_logprobs(r, got.at(r.id), 2);
  }
  const auto scoring = with_prompt_logprobs(requests(3, -1, 4), 1, 0);  // lm-eval style: the prompt only
  const auto scored = run(scoring, {});
  for (const Request& r : scoring) {
    EXPECT_TRUE(scored.at(r.id).token_ids.empty());
    EXPECT_EQ(scored.at(r.id).finish_reason, "length");
    expect_reference_prompt_logprobs(r, scored.at(r.id), 1);
  }
}

TEST(PromptLogprobs, APromptWhosePrefixIsCachedIsStillComputedWholeAndItsTokensAreUnchanged) {
  // Request b repeats a's prompt: without the gate it would take a's blocks from the prefix cache
  // and have no logits for them.
  std::vector<Request> batch = requests(1, -1, 5);
  for (int i = 0; i < 40; ++i) batch[0].prompt_token_ids.push_back(3 + (i * 37) % 500);
  Request b = batch[0];
  b.id = "b";
  b.params.prompt_logprobs = 3;
  const std::vector<std::string> overrides = {"kv.block_size=4", "engine.max_num_seqs=1"};
  const auto plain = run({batch[0],
                          [&] {
                            Request c = batch[0];
                            c.id = "c";
                            return c;
                          }()},
                         overrides);
  const auto got = run({batch[0], b}, overrides);
  expect_reference_prompt_logprobs(b, got.at("b"), 3);
  EXPECT_EQ(got.at("b").token_ids, plain.at("c").token_ids);
  EXPECT_FALSE(got.at(batch[0].id).prompt_logprobs.has_value());
}

TEST(PromptLogprobs, EverySampleOfAnNRequestCarriesThePromptsLogprobs) {
  std::vector<Request> batch = with_prompt_logprobs(requests(1, -1, 6), 2, 3);
  batch[0].params.n = 3;
  batch[0].params.temperature = 1.0;
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", {});
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, stories260k(), std::nullopt);
  engine.submit(batch[0]);
  std::vector<RequestResult> results;
  for (int steps = 0; engine.has_unfinished() && steps < 1000; ++steps)
    for (RequestResult& r : engine.step()) results.push_back(std::move(r));
  ASSERT_EQ(results.size(), 3u);
  for (const RequestResult& r : results) expect_reference_prompt_logprobs(batch[0], r, 2);
}

// A step's logit rows stay within max_num_seqs x (1 + num_draft_tokens), the rows a GPU's work
// buffers hold: a long prompt's rows are spread over several steps, next to decoding sequences
// and drafts, and every prompt token is still scored once, at its position.
TEST(PromptLogprobs, AStepsLogitRowsStayWithinMaxNumSeqsTimesOnePlusDraftsAsLongPromptsAreScored) {
  std::vector<Request> batch = requests(6, 1, 8);
  for (std::size_t i = 0; i < batch.size(); i += 2) {
    batch[i].params.prompt_logprobs = 2;
    for (int j = 0; j < 40; ++j) batch[i].prompt_token_ids.push_back(static_cast<std::int32_t>(3 + (j * 37) % 500));
  }
  for (const auto& [overrides, limit] : std::vector<std::pair<std::vector<std::string>, std::uint32_t>>{
           {{"engine.max_num_seqs=3"}, 3},
           {{"engine.max_num_seqs=2", "speculative.plugin=ngram", "speculative.num_draft_tokens=2"}, 6}}) {
    Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
    PluginRegistry registry(PluginRegistry::default_search_path());
    Engine engine(config, registry, stories260k(), std::nullopt);
    std::vector<StepRecord> steps;
    engine.record_steps(&steps);
    for (const Request& r : batch) engine.submit(r);
    std::map<std::string, RequestResult> got;
    for (int n = 0; engine.has_unfinished() && n < 10000; ++n)
      for (RequestResult& r : engine.step()) got[r.id] = std::move(r);
    std::uint32_t most = 0;
    for (const StepRecord& step : steps) most = std::max(most, step.rows);
    EXPECT_LE(most, limit) << overrides.front();
    EXPECT_EQ(most, limit) << "the prompts' rows fill the steps: " << overrides.front();
    for (const Request& r : batch) {
      ASSERT_EQ(got.count(r.id), 1u) << r.id;
      EXPECT_EQ(got.at(r.id).finish_reason, "length") << got.at(r.id).error;
      expect_reference_logprobs(r, got.at(r.id), 1);
      if (r.params.prompt_logprobs >= 0) expect_reference_prompt_logprobs(r, got.at(r.id), 2);
    }
  }
}

}  // namespace
}  // namespace loom::testing
