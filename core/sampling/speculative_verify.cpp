#include "core/sampling/speculative_verify.h"

#include <algorithm>
#include <vector>

namespace loom {

VerifyDraws next_verify_draws(SequenceRng& rng) {
  VerifyDraws u;
  u.accept = rng.next_uniform();
  u.residual = rng.next_uniform();
  return u;
}

DraftVerdict verify_point_draft(std::span<const TokenProbability> p, std::int32_t draft, VerifyDraws u) {
  double p_draft = 0.0;
  for (const TokenProbability& t : p)
    if (t.id == draft) p_draft = t.p;
  if (u.accept < p_draft) return {true, draft};
  // The residual max(0, p - q) with q the point mass on the draft: p without the draft.
  const double target = u.residual * (1.0 - p_draft);
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

DraftVerdict verify_draft(std::span<const TokenProbability> p, std::int32_t draft, std::span<const float> q,
                          VerifyDraws u) {
  const auto in_q = [&](std::int32_t id) { return id >= 0 && static_cast<std::size_t>(id) < q.size() ? q[id] : 0.0f; };
  const double q_draft = in_q(draft);
  if (!(q_draft > 0.0) || !(q_draft <= 1.0)) return verify_point_draft(p, draft, u);
  double p_draft = 0.0;
  for (const TokenProbability& t : p)
    if (t.id == draft) p_draft = t.p;
  if (u.accept * q_draft < p_draft) return {true, draft};
  // The residual max(0, p - q): tokens outside p's support have none.
  double residual = 0.0;
  for (const TokenProbability& t : p) residual += std::max(0.0, t.p - static_cast<double>(in_q(t.id)));
  const double target = u.residual * residual;
  double mass = 0.0;
  std::int32_t last = p.empty() ? 0 : p.front().id;
  for (const TokenProbability& t : p) {
    const double r = std::max(0.0, t.p - static_cast<double>(in_q(t.id)));
    if (r == 0.0) continue;
    mass += r;
    last = t.id;
    if (mass > target) return {false, t.id};
  }
  return {false, last};  // rounding (or p == q, where a rejection cannot happen) left the mass short
}

DraftVerdict verify_draft_row(std::span<const float> logits, const SamplingParams& params, std::int32_t draft,
                              std::span<const float> q, VerifyDraws u) {
  thread_local std::vector<TokenProbability> p;
  sampling_distribution(logits, params, p);
  return verify_draft(p, draft, q, u);
}

}  // namespace loom
