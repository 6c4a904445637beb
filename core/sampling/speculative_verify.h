// Verifying a sampled sequence's draft tokens so that what it emits is distributed exactly as
// sampling from the target model alone (Leviathan et al. 2023, Chen et al. 2023).
//
// A draft x drawn from the drafter's distribution q is accepted with probability
// min(1, p(x) / q(x)), p the target's distribution at its position; otherwise the replacement is
// drawn from max(0, p - q), renormalised. Either way the token at that position has
// distribution p, and the positions after a rejection are discarded. A drafter that proposes
// plain tokens (the n-gram drafter) puts all its probability on the draft, so the rule reduces
// to: accept with probability p(draft), else draw from p without the draft — which is exact for
// a draft drawn from any distribution, only less often accepted than with q itself. Greedy
// sequences need none of this: a draft is accepted when it equals the target's argmax.
#pragma once

#include <cstdint>
#include <span>

#include "core/sampling/sampler.h"
#include "core/sampling/sequence_rng.h"

namespace loom {

struct DraftVerdict {
  bool accepted = false;
  std::int32_t token = 0;  // the draft when accepted, else its replacement
};

// The two uniform draws [0, 1) a draft's verification uses: one to accept it, one to draw its
// replacement. Both are taken for every draft, so a step's draws are known before the logits
// (and a device can verify every row at once).
struct VerifyDraws {
  double accept = 0.0;
  double residual = 0.0;
};
VerifyDraws next_verify_draws(SequenceRng& rng);

// `p` is the target's distribution at the draft's position (sampling_distribution, penalties
// applied for the output including the drafts accepted before it). An empty `p` (no finite
// logit) rejects the draft in favour of greedy_token's fallback, token 0 — the same as sampling
// without drafts. The replacement is never the draft.
DraftVerdict verify_point_draft(std::span<const TokenProbability> p, std::int32_t draft, VerifyDraws u);

// The same for a draft drawn from `q` (the drafter's probabilities over the whole vocabulary).
// A q that does not give the draft a probability in (0, 1] is not what it was drawn from: the
// draft is verified as a point mass (exact whatever it was drawn from).
DraftVerdict verify_draft(std::span<const TokenProbability> p, std::int32_t draft, std::span<const float> q,
                          VerifyDraws u);

// verify_draft against the distribution `params` make of a row of logits (temperature > 0, no
// penalties): what a model returns for OutputRow::Kind::verify. The CUDA kernel verify_rows
// (kernels/cuda/sampling.h) follows it.
DraftVerdict verify_draft_row(std::span<const float> logits, const SamplingParams& params, std::int32_t draft,
                              std::span<const float> q, VerifyDraws u);

}  // namespace loom
