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
};

class LOOM_SDK_VISIBLE Drafter : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::drafter;

  // Fills drafts[i] with at most requests[i].max_draft_tokens tokens (possibly none) for each
  // request. `drafts` arrives sized like `requests`, each entry empty.
  virtual void propose(std::span<const DraftRequest> requests,
                       std::vector<std::vector<TokenId>>& drafts) = 0;

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
