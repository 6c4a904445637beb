// drafter/ngram, loaded through the registry: what it drafts for hand-made token sequences, that
// its per-sequence index grown step by step drafts what a fresh one would, and its key checks.
#include <random>

#include <gtest/gtest.h>

#include "loom/drafter.h"
#include "plugins/plugin_test_support.h"
#include "support/expect_error.h"

namespace loom::testing {
namespace {

using Tokens = std::vector<sdk::TokenId>;

PluginPtr<sdk::Drafter> ngram(std::int64_t min_n = 1, std::int64_t max_n = 3) {
  RawSection section;
  section.entries["min_n"] = RawEntry{min_n, "test"};
  section.entries["max_n"] = RawEntry{max_n, "test"};
  return make_plugin<sdk::Drafter>("ngram", sdk::EngineInfo{}, section);
}

Tokens draft(sdk::Drafter& drafter, sdk::SeqId id, const Tokens& tokens, std::size_t k) {
  const sdk::DraftRequest request{id, tokens, k};
  std::vector<Tokens> drafts(1);
  drafter.propose(std::span(&request, 1), drafts);
  return drafts[0];
}

TEST(NgramDrafter, DraftsWhatFollowedTheLatestEarlierOccurrenceOfTheSuffix) {
  auto d = ngram();
  // "7 8" occurs twice before the end; the latest occurrence (at 5) was followed by 40 41 42.
  EXPECT_EQ(draft(*d, 1, {7, 8, 30, 31, 5, 7, 8, 40, 41, 42, 9, 7, 8}, 3), (Tokens{40, 41, 42}));
  EXPECT_EQ(draft(*d, 2, {7, 8, 30, 31, 5, 7, 8, 40, 41, 42, 9, 7, 8}, 2), (Tokens{40, 41})) << "k bounds the draft";
}

TEST(NgramDrafter, ContinuationThatReachesTheEndRepeatsItsPeriodUpToK) {
  auto d = ngram();
  // "5 4" last occurred ending at 3, two tokens before the end: the sequence repeats with period 2
  // and the draft goes on with it, k tokens long.
  EXPECT_EQ(draft(*d, 1, {4, 5, 4, 5, 4}, 8), (Tokens{5, 4, 5, 4, 5, 4, 5, 4}));
  // A token repeated: period 1.
  EXPECT_EQ(draft(*d, 2, {9, 3, 7, 7}, 4), (Tokens{7, 7, 7, 7}));
  // Period 3 after a prefix that does not repeat.
  EXPECT_EQ(draft(*d, 3, {8, 1, 2, 3, 1, 2, 3}, 5), (Tokens{1, 2, 3, 1, 2}));
}

TEST(NgramDrafter, PrefersTheLongestSuffixThatOccursBefore) {
  auto d = ngram(1, 3);
  // The 1-gram "3" last occurred before 99; the 3-gram "1 2 3" before 50: the longer one wins.
  EXPECT_EQ(draft(*d, 1, {1, 2, 3, 50, 51, 3, 99, 1, 2, 3}, 2), (Tokens{50, 51}));
  auto unigram = ngram(1, 1);
  EXPECT_EQ(draft(*unigram, 1, {1, 2, 3, 50, 51, 3, 99, 1, 2, 3}, 2), (Tokens{99, 1}));
}

TEST(NgramDrafter, DraftsNothingWithoutAnEarlierOccurrence) {
  auto d = ngram(2, 3);
  EXPECT_TRUE(draft(*d, 1, {1, 2, 3, 4, 5}, 4).empty());
  EXPECT_TRUE(draft(*d, 2, {9}, 4).empty());
  EXPECT_TRUE(draft(*d, 3, {}, 4).empty());
  EXPECT_TRUE(draft(*d, 4, {6, 6}, 4).empty()) << "one token is shorter than min_n = 2 before the suffix";
}

// The index grows with the sequence; drafts must equal those of a drafter that sees the whole
// sequence for the first time, at every length, for random sequences over a small vocabulary.
TEST(NgramDrafter, GrowingIndexDraftsWhatAFreshOneDraftsAtEveryLength) {
  std::mt19937 rng(11);
  auto grown = ngram(1, 4);
  for (sdk::SeqId seq = 0; seq < 20; ++seq) {
    Tokens tokens;
    const int vocab = 3 + static_cast<int>(seq % 5);
    for (int length = 0; length < 120; ++length) {
      tokens.push_back(static_cast<sdk::TokenId>(rng() % vocab));
      auto fresh = ngram(1, 4);
      ASSERT_EQ(draft(*grown, seq, tokens, 5), draft(*fresh, 99, tokens, 5)) << "seq " << seq << " length " << length;
    }
    grown->on_finished(seq);
  }
}

TEST(NgramDrafter, ForgetsASequenceOnFinishedAndRebuildsFromItsTokens) {
  auto d = ngram();
  const Tokens tokens = {1, 2, 3, 1, 2};
  EXPECT_EQ(draft(*d, 5, tokens, 2), (Tokens{3, 1}));
  d->on_finished(5);
  // Same id, other tokens (a new sequence or a preempted one's): no trace of the old index.
  EXPECT_TRUE(draft(*d, 5, {8, 9}, 2).empty());
}

TEST(NgramDrafter, RefusesAnEmptyOrInvertedRangeOfN) {
  EXPECT_CONTAINS(message_of<ConfigError>([] { ngram(0, 3); }), "1 <= min_n <= max_n <= 64");
  EXPECT_CONTAINS(message_of<ConfigError>([] { ngram(3, 2); }), "min_n = 3, max_n = 2: need");
}

}  // namespace
}  // namespace loom::testing
