// Speculative decoding with the n-gram and draft-model drafters on the CPU engine: greedy outputs
// are token for token those of plain decoding, whatever k, batch, chunking or preemption; the
// drafter's proposals are really verified (some accepted, some not).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "support/stories260k.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

// Prompts of random token ids, some repeating a span of themselves (what prompt lookup drafts
// well), greedy, with output lengths that run past repetition into the model's own loops.
std::vector<Request> requests(int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Request> out;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = std::string("r").append(std::to_string(i));
    r.prompt_token_ids = {1};
    const int length = 3 + static_cast<int>(rng() % 30);
    for (int j = 0; j < length; ++j) r.prompt_token_ids.push_back(static_cast<std::int32_t>(3 + rng() % 500));
    if (i % 2 == 0)  // repeat the prompt's first half
      r.prompt_token_ids.insert(r.prompt_token_ids.end(), r.prompt_token_ids.begin() + 1,
                                r.prompt_token_ids.begin() + 1 + length / 2);
    r.params.max_tokens = 20 + static_cast<int>(rng() % 100);
    r.params.ignore_eos = i % 3 != 0;
    out.push_back(r);
  }
  return out;
}

struct Outcome {
  std::map<std::string, std::vector<std::int32_t>> tokens;
  EngineStats stats;
};

Outcome run(const std::vector<Request>& batch, const std::vector<std::string>& overrides) {
  if (!fs::exists(test_models_dir() / "stories260K.bin")) {
    ADD_FAILURE() << "shared models not found at " << test_models_dir() << "; set LOOM_TEST_MODELS";
    return {};
  }
  Config config = load_config_from(parse_config_text("", "test.toml"), ".", overrides);
  PluginRegistry registry(PluginRegistry::default_search_path());
  Engine engine(config, registry, stories260k(), std::nullopt);
  for (const Request& r : batch) engine.submit(r);
  Outcome out;
  for (int steps = 0; engine.has_unfinished() && steps < 100000; ++steps)
    for (RequestResult& result : engine.step()) {
      EXPECT_NE(result.finish_reason, "error") << result.error;
      out.tokens[result.id] = result.token_ids;
    }
  out.stats = engine.stats();
  EXPECT_EQ(out.stats.kv.used_blocks, 0u);
  return out;
}

std::vector<std::string> with(std::vector<std::string> base, std::vector<std::string> more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

TEST(Speculative, NgramDraftsLeaveGreedyTokensUnchangedForAnyNumberOfDrafts) {
  const auto batch = requests(24, 3);
  const Outcome plain = run(batch, {});
  for (int k : {1, 2, 4, 8}) {
    const Outcome spec = run(batch, {"speculative.plugin=ngram", "speculative.num_draft_tokens=" + std::to_string(k)});
    EXPECT_EQ(spec.tokens, plain.tokens) << "k = " << k;
    EXPECT_GT(spec.stats.accepted_draft_tokens, 0u) << "k = " << k;
    EXPECT_LT(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens) << "k = " << k << ": every draft right?";
    EXPECT_LT(spec.stats.steps, plain.stats.steps) << "k = " << k << ": accepted drafts save steps";
  }
}

TEST(Speculative, NgramDraftsLeaveGreedyTokensUnchangedUnderChunkingAndPreemption) {
  const auto batch = requests(24, 4);
  const std::vector<std::string> tight = {"kv.block_size=4", "kv.num_blocks=48", "engine.max_num_batched_tokens=16",
                                          "scheduler.output_reserve=0"};  // admitted as prompts fit: preempts
  const Outcome plain = run(batch, tight);
  const Outcome spec = run(batch, with(tight, {"speculative.plugin=ngram", "speculative.num_draft_tokens=4"}));
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_GT(spec.stats.preemptions, 0u);
  EXPECT_GT(spec.stats.accepted_draft_tokens, 0u);
}

TEST(Speculative, ASequenceDecodedAloneOrInABatchWithDraftsGivesTheSameTokens) {
  const auto batch = requests(12, 5);
  const Outcome together = run(batch, {"speculative.plugin=ngram"});
  for (const Request& r : {batch[0], batch[5], batch[10]}) {
    const Outcome alone = run({r}, {"speculative.plugin=ngram"});
    EXPECT_EQ(alone.tokens.at(r.id), together.tokens.at(r.id)) << r.id;
  }
}

// Sampled sequences verify n-gram drafts where the logits are: each row samples with the next
// draw of the sequence's stream and a draft stands while it equals the sample (the rejection rule
// for a point-mass draft), so a seeded sequence emits the tokens plain sampling emits, for any k,
// alone or in a batch, under chunking and preemption.
TEST(Speculative, SampledSequencesWithNgramDraftsEmitPlainSamplingsTokensForAnyNumberOfDrafts) {
  auto batch = requests(16, 8);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    SamplingParams& p = batch[i].params;
    p.temperature = i % 3 == 0 ? 0.3 : 0.9;
    p.top_k = i % 2 == 0 ? 20 : 0;
    p.top_p = i % 4 == 1 ? 0.9 : 1.0;
    p.seed = 300 + i;
  }
  const Outcome plain = run(batch, {});
  for (int k : {1, 3, 8}) {
    const Outcome spec = run(batch, {"speculative.plugin=ngram", "speculative.num_draft_tokens=" + std::to_string(k)});
    EXPECT_EQ(spec.tokens, plain.tokens) << "k = " << k;
    EXPECT_GT(spec.stats.accepted_draft_tokens, 0u) << "k = " << k;
    EXPECT_LT(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens) << "k = " << k << ": every draft right?";
  }
  const std::vector<std::string> tight = {"kv.block_size=4", "kv.num_blocks=48", "engine.max_num_batched_tokens=16",
                                          "scheduler.output_reserve=0"};
  const Outcome squeezed = run(batch, with(tight, {"speculative.plugin=ngram", "speculative.num_draft_tokens=4"}));
  EXPECT_EQ(squeezed.tokens, plain.tokens);
  EXPECT_GT(squeezed.stats.preemptions, 0u);
}

// Sequences with penalties (sampled with a presence penalty, greedy with a repetition penalty)
// verify n-gram drafts on the host, each row's token chosen as without drafts and a draft standing
// if equal: plain decoding's tokens, run after run, alone or batched.
TEST(Speculative, PenalisedSequencesWithNgramDraftsEmitPlainDecodingsTokensSampledOrGreedy) {
  auto batch = requests(16, 6);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i % 2 == 0) {
      batch[i].params.temperature = 0.8;
      batch[i].params.top_k = 20;
      batch[i].params.seed = 100 + i;
      batch[i].params.presence_penalty = 0.2;  // sampled on the host
    } else {
      batch[i].params.repetition_penalty = 1.1;  // greedy, its penalties applied on the host
    }
  }
  const std::vector<std::string> spec = {"speculative.plugin=ngram", "speculative.num_draft_tokens=3"};
  const Outcome first = run(batch, spec);
  EXPECT_EQ(first.tokens, run(batch, spec).tokens);
  EXPECT_GT(first.stats.accepted_draft_tokens, 0u);
  const Outcome alone = run({batch[0]}, spec);
  EXPECT_EQ(alone.tokens.at(batch[0].id), first.tokens.at(batch[0].id));
  EXPECT_EQ(first.tokens, run(batch, {}).tokens);
}

// The draft models: stories260K itself (every greedy draft right, on a batch-invariant CPU) and
// a random-weight model of its vocabulary (drafts mostly wrong).
std::string same_model_draft() { return "speculative.model=" + (test_models_dir() / "stories260K.bin").string(); }

struct RandomDraftModel {
  fs::path dir = fs::temp_directory_path() / ("loom_speculative_draft_" + std::to_string(::getpid()));
  RandomDraftModel() {
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);
    spec.config.vocab_size = stories260k().config.vocab_size;
    spec.config.max_position_embeddings = stories260k().config.max_position_embeddings;
    spec.init_std = 0.08f;
    spec.seed = 5;
    io::write_random_model(spec, dir);
  }
  ~RandomDraftModel() { fs::remove_all(dir); }
  std::string setting() const { return "speculative.model=" + dir.string(); }
};

// A real draft of partial quality: stories260K's first layer alone (tools/truncate_llama2c.py),
// right about three times in four on its own continuations.
TEST(Speculative, DraftModelOfTheTargetsFirstLayerLeavesGreedyTokensUnchangedWithSomeDraftsRejected) {
  const fs::path draft = fs::temp_directory_path() / ("loom_first_layer_" + std::to_string(::getpid()) + ".bin");
  const std::string command = "python3 " + (fs::path(LOOM_SOURCE_DIR) / "tools/truncate_llama2c.py").string() + " " +
                              (test_models_dir() / "stories260K.bin").string() + " 1 " + draft.string() +
                              " > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto batch = requests(16, 7);
  const Outcome plain = run(batch, {});
  const Outcome spec = run(batch, {"speculative.plugin=draft_model", "speculative.model=" + draft.string(),
                                   "speculative.num_draft_tokens=4"});
  fs::remove(draft);
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_GT(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens / 3);
  EXPECT_LT(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens) << "a one-layer draft never wrong?";
}

TEST(Speculative, DraftModelDraftsLeaveGreedyTokensUnchangedForAnyNumberOfDrafts) {
  const auto batch = requests(16, 7);
  const Outcome plain = run(batch, {});
  for (int k : {1, 2, 4, 8}) {
    const Outcome spec = run(batch, {"speculative.plugin=draft_model", same_model_draft(),
                                     "speculative.num_draft_tokens=" + std::to_string(k)});
    EXPECT_EQ(spec.tokens, plain.tokens) << "k = " << k;
    EXPECT_GT(spec.stats.draft_tokens, 0u) << "k = " << k;
    EXPECT_EQ(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens)
        << "k = " << k << ": the target drafting itself";
    EXPECT_LT(spec.stats.steps, plain.stats.steps) << "k = " << k;
  }
  const RandomDraftModel random;
  const Outcome wrong =
      run(batch, {"speculative.plugin=draft_model", random.setting(), "speculative.num_draft_tokens=4"});
  EXPECT_EQ(wrong.tokens, plain.tokens);
  EXPECT_GT(wrong.stats.draft_tokens, 0u);
  EXPECT_LT(wrong.stats.accepted_draft_tokens, wrong.stats.draft_tokens / 2) << "a random draft model right so often?";
}

TEST(Speculative, DraftModelDraftsLeaveGreedyTokensUnchangedUnderChunkingPreemptionAndAFullDraftCache) {
  const auto batch = requests(24, 8);
  const std::vector<std::string> tight = {"kv.block_size=4", "kv.num_blocks=48", "engine.max_num_batched_tokens=16",
                                          "scheduler.output_reserve=0"};
  const Outcome plain = run(batch, tight);
  const Outcome spec = run(batch, with(tight, {"speculative.plugin=draft_model", same_model_draft()}));
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_GT(spec.stats.preemptions, 0u);
  EXPECT_EQ(spec.stats.accepted_draft_tokens, spec.stats.draft_tokens);
  EXPECT_GT(spec.stats.draft_tokens, 0u);
  // A draft cache of 160 tokens holds a few sequences at a time: the others draft nothing.
  const Outcome full =
      run(batch, with(tight, {"speculative.plugin=draft_model", same_model_draft(), "speculative.kv_tokens=160"}));
  EXPECT_EQ(full.tokens, plain.tokens);
  EXPECT_GT(full.stats.draft_tokens, 0u);
  EXPECT_LT(full.stats.draft_tokens, spec.stats.draft_tokens);
}

// Sampled sequences get drafts drawn from the draft model at their temperature, with its
// distribution: the target drafting for itself has q = p, so every draft is accepted (up to the
// float rounding of q); seeded runs repeat, alone or batched.
TEST(Speculative, SampledSequencesAcceptDraftsDrawnFromTheDraftModelReproducibly) {
  auto batch = requests(12, 9);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].params.temperature = 0.7;
    batch[i].params.seed = 200 + i;
  }
  const std::vector<std::string> spec = {"speculative.plugin=draft_model", same_model_draft()};
  const Outcome first = run(batch, spec);
  const Outcome again = run(batch, spec);
  EXPECT_EQ(first.tokens, again.tokens);
  EXPECT_GT(first.stats.draft_tokens, 0u);
  EXPECT_GE(first.stats.accepted_draft_tokens, first.stats.draft_tokens * 99 / 100);
  const Outcome alone = run({batch[3]}, spec);
  EXPECT_EQ(alone.tokens.at(batch[3].id), first.tokens.at(batch[3].id));
  // A random draft model's samples are mostly rejected, and outputs stay seeded.
  const RandomDraftModel random;
  const Outcome wrong = run(batch, {"speculative.plugin=draft_model", random.setting()});
  EXPECT_EQ(wrong.tokens, run(batch, {"speculative.plugin=draft_model", random.setting()}).tokens);
  EXPECT_LT(wrong.stats.accepted_draft_tokens, wrong.stats.draft_tokens / 2);
}

}  // namespace
}  // namespace loom::testing
