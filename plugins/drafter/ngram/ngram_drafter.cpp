// drafter/ngram: prompt lookup. The draft is what followed the most recent earlier occurrence of
// the sequence's last n tokens (prompt and output alike), trying n from max_n down to min_n; no
// occurrence, no draft. A continuation that runs into the end of the tokens repeats the period it
// found, so an output caught in a loop is drafted a full k ahead. Outputs that copy spans of their prompt (summaries, code edits, quoting)
// or repeat themselves are drafted well; anything else costs a lookup and drafts nothing.
//
// Each sequence keeps an index from every n-gram it has seen to where its latest occurrence
// ends, grown as tokens are appended (tokens are never rewritten), so a step costs O(new tokens
// x n-gram lengths + k), not a scan of the whole context. on_finished (also called on
// preemption) drops the index; it is rebuilt from the tokens on the next proposal.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/block_hash.h"
#include "loom/drafter.h"
#include "loom/error.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"min_n", KeyType::integer, "1", "shortest suffix matched against earlier tokens"},
    {"max_n", KeyType::integer, "3", "longest suffix matched (tried first)"},
};

// Key of tokens[end - n, end) in an n-gram index: the SDK's block hash of those tokens
// (collisions are checked against the tokens).
std::uint64_t ngram_hash(std::span<const TokenId> tokens, std::size_t end, std::size_t n) {
  return chain_hash(kChainSeed, tokens.subspan(end - n, n));
}

class NgramDrafter final : public Drafter {
 public:
  NgramDrafter(const EngineInfo&, const PluginConfig& config)
      : min_n_(static_cast<std::size_t>(config.integer("min_n"))),
        max_n_(static_cast<std::size_t>(config.integer("max_n"))) {
    if (config.integer("min_n") < 1 || config.integer("max_n") < config.integer("min_n") ||
        config.integer("max_n") > 64)
      throw loom::ConfigError("drafter/ngram: [speculative] min_n = " + std::to_string(config.integer("min_n")) +
                              ", max_n = " + std::to_string(config.integer("max_n")) +
                              ": need 1 <= min_n <= max_n <= 64");
  }

  void propose(std::span<const DraftRequest> requests, std::vector<std::vector<TokenId>>& drafts) override {
    for (std::size_t r = 0; r < requests.size(); ++r) {
      const DraftRequest& request = requests[r];
      Index& index = indexes_[request.id];
      extend(index, request.tokens);
      drafts[r] = lookup(index, request.tokens, request.max_draft_tokens);
    }
  }

  void on_accepted(SeqId, std::size_t) override {}
  void on_finished(SeqId seq) override { indexes_.erase(seq); }

 private:
  // Per n-gram length, the latest end (exclusive) of each n-gram of tokens[0, indexed).
  struct Index {
    std::size_t indexed = 0;
    std::vector<std::unordered_map<std::uint64_t, std::uint32_t>> latest_end;
  };

  // Indexes every n-gram that ends before the last token: the suffix being matched must find an
  // earlier occurrence, never itself.
  void extend(Index& index, std::span<const TokenId> tokens) const {
    if (index.latest_end.empty()) index.latest_end.resize(max_n_ - min_n_ + 1);
    const std::size_t limit = tokens.empty() ? 0 : tokens.size() - 1;
    for (std::size_t end = std::max<std::size_t>(index.indexed, 1); end <= limit; ++end)
      for (std::size_t n = min_n_; n <= max_n_ && n <= end; ++n)
        index.latest_end[n - min_n_][ngram_hash(tokens, end, n)] = static_cast<std::uint32_t>(end);
    index.indexed = std::max(index.indexed, limit + 1);
  }

  std::vector<TokenId> lookup(const Index& index, std::span<const TokenId> tokens, std::size_t k) const {
    const std::size_t size = tokens.size();
    for (std::size_t n = std::min(max_n_, size); n >= min_n_ && n > 0; --n) {
      const auto& latest = index.latest_end[n - min_n_];
      const auto it = latest.find(ngram_hash(tokens, size, n));
      if (it == latest.end()) continue;
      const std::size_t end = it->second;
      if (!std::equal(tokens.begin() + static_cast<std::ptrdiff_t>(end - n),
                      tokens.begin() + static_cast<std::ptrdiff_t>(end),
                      tokens.begin() + static_cast<std::ptrdiff_t>(size - n)))
        continue;  // a hash collision
      // Copies what followed, overlapping like LZ77: where the copy reaches the end of the
      // tokens it goes on with its own start, so a sequence that repeats itself with period
      // size - end (a looping output) is drafted k tokens ahead, not just up to its end.
      std::vector<TokenId> draft(k);
      for (std::size_t i = 0; i < k; ++i) draft[i] = end + i < size ? tokens[end + i] : draft[end + i - size];
      return draft;
    }
    return {};
  }

  std::size_t min_n_, max_n_;
  std::unordered_map<SeqId, Index> indexes_;
};

}  // namespace

LOOM_PLUGIN(drafter, "ngram", "1.0.0", "Prompt lookup: drafts what followed the last n tokens' latest earlier occurrence",
            NgramDrafter, kKeys)
