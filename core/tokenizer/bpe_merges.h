// The BPE model of a tokenizer.json: a vocabulary of pieces and the ranked merges that build a
// word's pieces from its characters. Knows nothing of bytes or regexes: a "word" here is already
// spelled in the vocabulary's alphabet (GPT-2's byte stand-ins for byte-level tokenizers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace loom {

class BpeMerges {
 public:
  struct Merge {
    std::string left, right;
  };
  // Throws loom::ModelError when a merge's parts or result are not in `vocab` (as `tokenizers`
  // refuses such a file).
  BpeMerges(std::unordered_map<std::string, std::int32_t> vocab, const std::vector<Merge>& merges, bool ignore_merges);

  // The ids of `word`: with ignore_merges a word in the vocabulary is one id; otherwise each
  // character starts as its own piece and the adjacent pair of lowest rank (the leftmost among
  // equals) is merged until no pair has a merge. nullopt when a character is not in the vocabulary.
  std::optional<std::vector<std::int32_t>> encode(std::string_view word) const;

  std::optional<std::int32_t> id_of(std::string_view piece) const;
  const std::unordered_map<std::string, std::int32_t>& vocab() const { return vocab_; }

 private:
  struct PairHash {
    std::size_t operator()(const std::pair<std::int32_t, std::int32_t>& p) const noexcept {
      return std::hash<std::uint64_t>()((static_cast<std::uint64_t>(static_cast<std::uint32_t>(p.first)) << 32) |
                                        static_cast<std::uint32_t>(p.second));
    }
  };
  struct Merged {
    std::int32_t rank, id;
  };

  std::unordered_map<std::string, std::int32_t> vocab_;
  std::unordered_map<std::pair<std::int32_t, std::int32_t>, Merged, PairHash> merges_;
  bool ignore_merges_;
};

}  // namespace loom
