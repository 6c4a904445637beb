#include "core/tokenizer/bpe_merges.h"

#include <queue>

#include "core/tokenizer/utf8.h"
#include "loom/error.h"

namespace loom {

BpeMerges::BpeMerges(std::unordered_map<std::string, std::int32_t> vocab, const std::vector<Merge>& merges,
                     bool ignore_merges)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges) {
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    const auto left = id_of(m.left), right = id_of(m.right), merged = id_of(m.left + m.right);
    if (!left || !right || !merged) {
      throw ModelError("merge " + std::to_string(rank) + " ('" + m.left + "' + '" + m.right +
                       "') uses or makes a piece " + "that is not in the vocabulary");
    }
    // A pair listed twice keeps its first (lowest) rank.
    merges_.try_emplace({*left, *right}, Merged{static_cast<std::int32_t>(rank), *merged});
  }
}

std::optional<std::int32_t> BpeMerges::id_of(std::string_view piece) const {
  const auto it = vocab_.find(std::string(piece));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::vector<std::int32_t>> BpeMerges::encode(std::string_view word) const {
  if (ignore_merges_) {
    if (auto whole = id_of(word)) return std::vector<std::int32_t>{*whole};
  }
  // The word as a linked list of pieces; a min-heap of candidate merges by (rank, position).
  // An entry goes stale when either piece has changed since it was pushed; it is then skipped.
  struct Piece {
    std::int32_t id;
    std::int32_t prev, next;  // -1 at the ends
    bool alive;
  };
  std::vector<Piece> pieces;
  for (std::size_t i = 0; i < word.size();) {
    const std::size_t start = i;
    utf8::next(word, i);
    const auto id = id_of(word.substr(start, i - start));
    if (!id) return std::nullopt;
    const auto n = static_cast<std::int32_t>(pieces.size());
    pieces.push_back({*id, n - 1, n + 1, true});
  }
  if (pieces.empty()) return std::vector<std::int32_t>{};
  pieces.back().next = -1;

  struct Candidate {
    std::int32_t rank, pos, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](std::int32_t pos) {
    const std::int32_t next = pieces[static_cast<std::size_t>(pos)].next;
    if (next < 0) return;
    const auto it = merges_.find({pieces[static_cast<std::size_t>(pos)].id, pieces[static_cast<std::size_t>(next)].id});
    if (it != merges_.end()) {
      heap.push(
          {it->second.rank, pos, pieces[static_cast<std::size_t>(pos)].id, pieces[static_cast<std::size_t>(next)].id});
    }
  };
  for (std::int32_t pos = 0; pos < static_cast<std::int32_t>(pieces.size()); ++pos) push(pos);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Piece& left = pieces[static_cast<std::size_t>(c.pos)];
    if (!left.alive || left.id != c.left_id || left.next < 0) continue;
    Piece& right = pieces[static_cast<std::size_t>(left.next)];
    if (right.id != c.right_id) continue;
    left.id = merges_.at({c.left_id, c.right_id}).id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) pieces[static_cast<std::size_t>(right.next)].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  std::vector<std::int32_t> ids;
  for (std::int32_t pos = 0; pos >= 0; pos = pieces[static_cast<std::size_t>(pos)].next) {
    ids.push_back(pieces[static_cast<std::size_t>(pos)].id);
  }
  return ids;
}

}  // namespace loom
