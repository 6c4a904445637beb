#include "core/sampling/speculative_verify.h"

namespace loom {

DraftVerdict verify_point_draft(std::span<const TokenProbability> p, std::int32_t draft, SequenceRng& rng) {
  double p_draft = 0.0;
  for (const TokenProbability& t : p)
    if (t.id == draft) p_draft = t.p;
  if (rng.next_uniform() < p_draft) return {true, draft};
  // The residual max(0, p - q) with q the point mass on the draft: p without the draft.
  const double target = rng.next_uniform() * (1.0 - p_draft);
  double mass = 0.0;
  std::int32_t last = 0;
  for (const TokenProbability& t : p) {
    if (t.id == draft || t.p == 0.0) continue;
    mass += t.p;
    last = t.id;
    if (mass > target) return {false, t.id};
  }
  return {false, last};  // rounding left the running mass just short of the target
}

}  // namespace loom
