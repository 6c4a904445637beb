// scheduler/fcfs: how many more KV blocks the admitted sequences will hold at the busiest future
// step, beyond the blocks they hold now.
//
// Each sequence reaches `start` tokens once its prompt is in (the rest of a prompt counts at
// once), then grows one token a step for `steps` more steps, and then finishes, giving back what
// it grew. The growth at step t is summed over the sequences still running then, so it peaks just
// before one of them finishes: the peak is the largest of those sums, and sequences that finish
// early make room for the growth of later ones (the sum of every sequence's final size, the
// simpler bound, holds back work whose lengths differ). The blocks held now are counted once by
// the pool, shared prefixes included, and are assumed kept until the end: an upper bound.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace loom::fcfs {

class KvProjection {
 public:
  explicit KvProjection(std::size_t block_size) : block_size_(block_size) {}

  // A sequence holding `held_blocks` now. Kept in order of `steps`, so a query is one pass.
  void add(std::size_t start_tokens, std::size_t steps, std::size_t held_blocks) {
    const Seq seq{steps, start_tokens, held_blocks};
    seqs_.insert(
        std::upper_bound(seqs_.begin(), seqs_.end(), seq, [](const Seq& a, const Seq& b) { return a.steps < b.steps; }),
        seq);
  }

  bool empty() const { return seqs_.empty(); }

  // The peak growth, in blocks, with one more sequence of the given shape (not kept).
  std::size_t peak_growth_with(std::size_t start_tokens, std::size_t steps, std::size_t held_blocks) const {
    // Visiting the sequences from the last to finish: at t = steps of the one visited, it and
    // those visited before still run, holding sum of ceil((start + t) / bs) blocks, at most
    // (sum of start + count * (t + bs - 1)) / bs.
    std::size_t peak = 0, start_sum = 0, held_sum = 0, count = 0;
    auto visit = [&](const Seq& s) {
      start_sum += s.start;
      held_sum += s.held;
      ++count;
      const std::size_t blocks = (start_sum + count * (s.steps + block_size_ - 1)) / block_size_;
      if (blocks > held_sum) peak = std::max(peak, blocks - held_sum);
    };
    const Seq extra{steps, start_tokens, held_blocks};
    bool visited_extra = false;
    for (auto it = seqs_.rbegin(); it != seqs_.rend(); ++it) {
      if (!visited_extra && extra.steps >= it->steps) {
        visit(extra);
        visited_extra = true;
      }
      visit(*it);
    }
    if (!visited_extra) visit(extra);
    return peak;
  }

 private:
  struct Seq {
    std::size_t steps;  // steps until it finishes
    std::size_t start;  // tokens held once its prompt is in
    std::size_t held;   // blocks held now
  };

  std::size_t block_size_;
  std::vector<Seq> seqs_;
};

}  // namespace loom::fcfs
