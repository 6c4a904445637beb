// Extension point `drafter`: proposes draft tokens for speculative decoding.
//
// Before a decode step the engine asks the drafter for up to k draft tokens per sequence. The
// core then runs the target model once over each sequence's last token plus its drafts,
// accepts the longest prefix of drafts the target agrees with (greedy) or that passes
// rejection sampling, and tells the drafter how many were accepted. Outputs are therefore the
// same as without speculation; only the speed changes.
//
// Threading: engine thread only. Errors: propose() may throw loom::Error; the engine then
// decodes those sequences without drafts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "loom/export.h"
#include "loom/plugin.h"
#include "loom/types.h"

namespace loom::sdk {

struct DraftRequest {
  SeqId id = 0;
  std::span<const TokenId> tokens;  // prompt followed by generated tokens
  std::size_t max_draft_tokens = 0;
  // How the sequence samples: 0 is greedy (a draft stands when it is the target's own token);
  // above 0 a drafter may draw its drafts at this temperature and return the distributions it
  // drew them from (propose_with_probabilities). `seed` is for such draws: it depends only on
  // the request's seed and the sequence's length, so seeded runs repeat, alone or batched.
  float temperature = 0.0f;
  std::uint64_t seed = 0;
};

class LOOM_SDK_VISIBLE Drafter : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::drafter;

  // Fills drafts[i] with at most requests[i].max_draft_tokens tokens (possibly none) for each
  // request. `drafts` arrives sized like `requests`, each entry empty.
  virtual void propose(std::span<const DraftRequest> requests,
                       std::vector<std::vector<TokenId>>& drafts) = 0;

  // What the engine calls: drafts as propose() gives them, and for each request either no
  // probabilities (each draft a certainty, verified as a point mass) or drafts[i].size() rows
  // of vocab_size floats, row j the distribution draft j was drawn from given the tokens and
  // the drafts before it. Sampled sequences accept more of drafts whose distribution is given;
  // outputs follow the target either way. `probabilities` arrives sized like `requests`, each
  // entry empty. The default gives none.
  virtual void propose_with_probabilities(std::span<const DraftRequest> requests,
                                          std::vector<std::vector<TokenId>>& drafts,
                                          std::vector<std::vector<float>>& probabilities) {
    (void)probabilities;
    propose(requests, drafts);
  }

  // How many of the last proposed drafts for `seq` the target model accepted.
  virtual void on_accepted(SeqId seq, std::size_t num_accepted) = 0;

  // `seq` finished or was preempted: drop any state kept for it.
  virtual void on_finished(SeqId seq) = 0;
};

template <>
struct InterfaceOf<PluginKind::drafter> {
  using type = Drafter;
};

}  // namespace loom::sdk
