// What `loom serve` needs of the engine: abort() stops a request in any state and frees its
// blocks while the others go on unchanged; visit_progress() shows each running sample's output
// as it grows, its text never taking back what it showed (stop strings held back).
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "support/random_llama.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

// A small random Llama with Llama-2's vocabulary and tokenizer, so that text comes out.
const fs::path& text_model_dir() {
  static const fs::path dir = random_text_llama_dir(5, 256, "engine_streaming");
  return dir;
}

std::unique_ptr<Engine> make_engine(PluginRegistry& registry, const std::vector<std::string>& overrides) {
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  return std::make_unique<Engine>(config, registry, io::load_hf_model(text_model_dir()),
                                  Tokenizer::load(text_model_dir() / "tokenizer.model"));
}

Request request(const std::string& id, std::vector<std::int32_t> prompt, int max_tokens) {
  Request r;
  r.id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

std::map<std::string, RequestResult> drain(Engine& engine) {
  std::map<std::string, RequestResult> out;
  for (int steps = 0; engine.has_unfinished() && steps < 10000; ++steps)
    for (RequestResult& r : engine.step()) out[r.id + "#" + std::to_string(r.index)] = std::move(r);
  return out;
}

TEST(EngineAbort, ARunningRequestEndsWithAbortItsTokensSoFarAndTheOthersAreUnchanged) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto alone = make_engine(registry, {});
  alone->submit(request("a", {1, 450, 4996}, 20));
  const auto expected = drain(*alone);

  auto engine = make_engine(registry, {});
  engine->submit(request("a", {1, 450, 4996}, 20));
  engine->submit(request("b", {1, 306, 763, 278}, 20));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(engine->step().empty());
  EXPECT_EQ(engine->num_running(), 2u);
  EXPECT_EQ(engine->abort("b"), 1u);
  EXPECT_EQ(engine->num_running(), 1u);
  EXPECT_EQ(engine->abort("b"), 0u) << "a request already stopped is not stopped twice";
  const auto results = drain(*engine);
  ASSERT_EQ(results.count("b#0"), 1u);
  EXPECT_EQ(results.at("b#0").finish_reason, "abort");
  EXPECT_EQ(results.at("b#0").token_ids.size(), 5u) << "a token per step (the prompt's step samples one), kept";
  EXPECT_EQ(results.at("a#0").token_ids, expected.at("a#0").token_ids);
  EXPECT_EQ(engine->stats().kv.used_blocks, 0u);
}

TEST(EngineAbort, AWaitingRequestWithUnforkedSamplesStopsEverySample) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto engine = make_engine(registry, {"engine.max_num_seqs=1"});
  engine->submit(request("first", {1, 450}, 8));
  Request sampled = request("second", {1, 306, 763}, 8);
  sampled.params.n = 3;
  sampled.params.temperature = 1.0;
  engine->submit(sampled);
  ASSERT_TRUE(engine->step().empty());
  EXPECT_EQ(engine->num_waiting(), 3u) << "one sample waits in the queue, two more inside it";
  EXPECT_EQ(engine->abort("second"), 3u);
  EXPECT_EQ(engine->num_waiting(), 0u);
  const auto results = drain(*engine);
  for (int i = 0; i < 3; ++i) {
    const RequestResult& r = results.at("second#" + std::to_string(i));
    EXPECT_EQ(r.finish_reason, "abort");
    EXPECT_TRUE(r.token_ids.empty());
  }
  EXPECT_EQ(results.at("first#0").token_ids.size(), 8u);
  EXPECT_EQ(engine->stats().kv.used_blocks, 0u);
}

TEST(EngineProgress, StreamedTokensAndTextArePrefixesOfTheResultWithStopStringsHeldBack) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  // The stop string is chosen from the plain run's text so that it occurs part-way.
  auto plain = make_engine(registry, {});
  plain->submit(request("p", {1, 450, 4996, 17354}, 40));
  const std::string text = drain(*plain).at("p#0").text;
  ASSERT_GT(text.size(), 30u);
  const std::string stop = text.substr(20, 4);

  auto engine = make_engine(registry, {});
  Request r = request("p", {1, 450, 4996, 17354}, 40);
  r.params.stop = {stop};
  r.params.logprobs = 1;
  engine->submit(r);
  std::string shown;
  std::vector<std::int32_t> tokens;
  RequestResult result;
  for (int steps = 0; engine->has_unfinished() && steps < 1000; ++steps) {
    for (RequestResult& done : engine->step()) result = std::move(done);
    engine->visit_progress([&](const SampleProgress& p) {
      EXPECT_EQ(p.request_id, "p");
      EXPECT_EQ(p.logprobs.size(), p.token_ids.size());
      ASSERT_GE(p.text.size(), shown.size());
      EXPECT_EQ(p.text.substr(0, shown.size()), shown) << "text shown is never taken back";
      ASSERT_GE(p.token_ids.size(), tokens.size());
      shown = p.text;
      tokens.assign(p.token_ids.begin(), p.token_ids.end());
    });
  }
  EXPECT_EQ(result.finish_reason, "stop");
  EXPECT_EQ(result.text, text.substr(0, result.text.size()));
  EXPECT_EQ(result.text.find(stop), std::string::npos);
  EXPECT_EQ(result.text.substr(0, shown.size()), shown);
  EXPECT_FALSE(shown.empty());
  EXPECT_EQ(std::vector<std::int32_t>(result.token_ids.begin(), result.token_ids.begin() + tokens.size()), tokens);
}

// The engine searches only each token's new text (and what could begin a stop string before it):
// the text must still end at the first occurrence a search of the whole text finds, for stop
// strings of several lengths anywhere in the output, and with min_tokens, after which the first
// search covers everything generated before.
TEST(EngineProgress, IncrementalStopSearchCutsWhereAWholeTextSearchWouldForAnyOffsetAndMinTokens) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto plain = make_engine(registry, {});
  plain->submit(request("p", {1, 450, 4996, 17354}, 60));
  const std::string text = drain(*plain).at("p#0").text;
  ASSERT_GT(text.size(), 60u);
  for (std::size_t offset : {0u, 3u, 17u, 41u}) {
    for (std::size_t length : {1u, 3u, 7u}) {
      for (int min_tokens : {0, 12}) {
        const std::string stop = text.substr(offset, length);
        auto engine = make_engine(registry, {});
        Request r = request("p", {1, 450, 4996, 17354}, 60);
        r.params.stop = {"never in this text \x01", stop};
        r.params.min_tokens = min_tokens;
        engine->submit(r);
        const RequestResult result = drain(*engine).at("p#0");
        EXPECT_EQ(result.finish_reason, "stop");
        EXPECT_EQ(result.text, text.substr(0, text.find(stop)))
            << "stop \"" << stop << "\" at " << offset << ", min_tokens " << min_tokens;
      }
    }
  }
}

}  // namespace
}  // namespace loom::testing
