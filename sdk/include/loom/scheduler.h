// Extension point `scheduler`: which sequences run in the next step, and how many tokens each.
//
// Once per engine step the engine passes a view of every unfinished sequence. The scheduler
// chooses a plan within the step budget — prefill chunks and decodes mixed — and makes the
// plan's memory real through the allocator: it calls acquire_cached_prefix() for sequences it
// starts, reserve() for the slots each scheduled sequence writes, and release() for sequences it
// preempts (their KV will be recomputed) or rejects. The engine then runs exactly the plan.
//
// Two optional sources of work it may use (a scheduler that ignores both stays correct):
//  * KV a connector can load (SequenceView::loadable_*): a waiting sequence whose device prefix
//    ends where the loadable range begins may take those tokens as computed, by reserving their
//    slots and naming them in ScheduledSeq::num_loaded_tokens; the engine has the connector load
//    them before the forward pass. They cost no token budget.
//  * Draft tokens to verify (SequenceView::num_draft_tokens): a decoding sequence may verify up
//    to that many drafts in its step, by reserving their slots too and naming them in
//    ScheduledSeq::num_lookahead_tokens. They count against the token budget.
//
// The policy is pure: it sees plain data and the allocator, so it is unit-tested without a
// model. It may keep state between steps (e.g. to age priorities), keyed by SeqId.
//
// Threading: called from the engine thread only. Errors: throws nothing; a request that can
// never be served goes into `rejected` with the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loom/export.h"
#include "loom/kv_allocator.h"
#include "loom/plugin.h"
#include "loom/types.h"

namespace loom::sdk {

enum class SeqState : std::uint8_t {
  waiting,  // has no KV blocks: never started, or preempted
  running,  // holds KV blocks for num_computed_tokens tokens
};

struct SequenceView {
  SeqId id = 0;
  SeqState state = SeqState::waiting;
  std::span<const TokenId> tokens;      // prompt followed by the tokens generated so far
  std::size_t num_prompt_tokens = 0;
  std::size_t num_computed_tokens = 0;  // tokens whose KV is stored (0 while waiting)
  std::size_t max_total_tokens = 0;     // prompt plus the most tokens it may generate
  Tick arrival = 0;                     // engine step at which it arrived
  std::int32_t priority = 0;            // larger runs earlier, for schedulers that honour it
  // Waiting sequences: the KV connector can load tokens [loadable_from, loadable_from +
  // num_loadable_tokens), whole blocks, provided the device prefix cache supplies [0,
  // loadable_from). 0 when there is no connector or nothing to load.
  std::size_t loadable_from = 0;
  std::size_t num_loadable_tokens = 0;
  // Running sequences about to decode (num_computed_tokens == tokens.size() - 1): draft tokens the
  // drafter proposed for this step, which the step may verify after the last token. 0 without a
  // drafter.
  std::size_t num_draft_tokens = 0;
};

struct StepBudget {
  std::uint32_t max_num_seqs = 64;
  std::uint32_t max_num_batched_tokens = 2048;
};

// One sequence in the plan: compute tokens [start, start + num_tokens). When that range ends at
// tokens.size(), the step also samples the sequence's next token, after verifying
// num_lookahead_tokens draft tokens placed after it. Tokens [start - num_loaded_tokens, start) are
// loaded by the KV connector instead of computed.
struct ScheduledSeq {
  SeqId id = 0;
  std::size_t start = 0;
  std::size_t num_tokens = 0;
  std::size_t num_loaded_tokens = 0;     // <= the view's num_loadable_tokens, from loadable_from
  std::size_t num_lookahead_tokens = 0;  // <= the view's num_draft_tokens; slots reserved too
};

struct RejectedSeq {
  SeqId id = 0;
  std::string reason;  // shown to the user as the request's error
};

struct SchedulePlan {
  std::vector<ScheduledSeq> scheduled;  // in the order the batch is laid out
  std::vector<SeqId> preempted;         // released; they restart from waiting
  std::vector<RejectedSeq> rejected;    // released; they finish with an error
};

class LOOM_SDK_VISIBLE Scheduler : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::scheduler;

  // Plans one step. `seqs` holds every unfinished sequence in arrival order.
  // Postconditions: at most budget.max_num_seqs entries in `scheduled` and at most
  // budget.max_num_batched_tokens tokens (num_tokens + num_lookahead_tokens) in all; every
  // scheduled sequence has slots for start + num_tokens + num_lookahead_tokens tokens reserved;
  // every preempted or rejected sequence has been released;
  // no sequence appears twice. An empty plan with waiting work is allowed only when nothing
  // can run (the engine reports that as a stall).
  // Expected cost: O(number of sequences) per step.
  virtual SchedulePlan schedule(std::span<const SequenceView> seqs, KvAllocator& allocator,
                                const StepBudget& budget, Tick now) = 0;
};

template <>
struct InterfaceOf<PluginKind::scheduler> {
  using type = Scheduler;
};

}  // namespace loom::sdk
