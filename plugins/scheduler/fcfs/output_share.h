// scheduler/fcfs: how much of its allowed output (max_total_tokens minus the prompt) a sequence
// really generates, learned from the sequences that finished. Admission keeps KV room for that
// share of every running sequence's remaining output: requests that stop early at EOS let more
// run at once, requests that run to max_tokens keep the reserve at its ceiling (no preemption).
#pragma once

#include <algorithm>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "loom/scheduler.h"

namespace loom::fcfs {

class OutputShare {
 public:
  // `ceiling`: the share when nothing has finished yet, and the most ever used.
  OutputShare(double ceiling, bool learn) : ceiling_(ceiling), learn_(learn) {}

  // Called once per step with every unfinished sequence: those seen last step and gone now have
  // finished (except the ones `forget` named: rejected, never run).
  void observe(std::span<const sdk::SequenceView> seqs) {
    if (!learn_) return;
    std::unordered_map<sdk::SeqId, Seen> now;
    now.reserve(seqs.size());
    for (const sdk::SequenceView& s : seqs) {
      const std::size_t allowed =
          s.max_total_tokens > s.num_prompt_tokens ? s.max_total_tokens - s.num_prompt_tokens : 0;
      now[s.id] = {s.tokens.size() - s.num_prompt_tokens, allowed};
    }
    for (const auto& [id, seen] : last_) {
      if (now.count(id) || forgotten_.erase(id)) continue;
      // Decayed sums: the last few hundred finished sequences count.
      // +1: its last token was sampled after the view we saw.
      generated_ = generated_ * kDecay + static_cast<double>(std::min(seen.generated + 1, seen.allowed));
      allowed_ = allowed_ * kDecay + static_cast<double>(seen.allowed);
    }
    last_ = std::move(now);
  }

  void forget(sdk::SeqId id) { forgotten_.insert(id); }

  double share() const {
    if (!learn_ || allowed_ <= 0) return ceiling_;
    return std::min(ceiling_, std::max(kFloor, generated_ / allowed_));
  }

 private:
  struct Seen {
    std::size_t generated = 0, allowed = 0;
  };
  static constexpr double kDecay = 0.995;
  static constexpr double kFloor = 0.05;  // never bet on nothing more being generated
  double ceiling_;
  bool learn_;
  double generated_ = 0, allowed_ = 0;
  std::unordered_map<sdk::SeqId, Seen> last_;
  std::unordered_set<sdk::SeqId> forgotten_;
};

}  // namespace loom::fcfs
