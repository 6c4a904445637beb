// Verifying a sampled sequence's draft tokens so that what it emits is distributed exactly as
// sampling from the target model alone (Leviathan et al. 2023, Chen et al. 2023).
//
// A drafter that proposes plain tokens (the n-gram drafter) puts all its probability on the
// draft, so the rule reduces to: accept the draft with probability p(draft), the target's
// probability of it at that position; otherwise draw the replacement from p with the draft
// removed and renormalised. Either way the token at that position has distribution p, and the
// positions after a rejection are discarded. Greedy sequences need none of this: a draft is
// accepted when it equals the target's argmax.
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

// `p` is the target's distribution at the draft's position (sampling_distribution, penalties
// applied for the output including the drafts accepted before it). Takes one draw from `rng`
// when the draft is accepted, two when it is not. An empty `p` (no finite logit) rejects the
// draft in favour of greedy_token's fallback, token 0 — the same as sampling without drafts.
DraftVerdict verify_point_draft(std::span<const TokenProbability> p, std::int32_t draft, SequenceRng& rng);

}  // namespace loom
