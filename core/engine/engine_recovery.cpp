// How the engine contains plugin failures, so that a plugin that throws (or a scheduler that
// plans what cannot run) costs at most the requests it touched and never corrupts the others.
//
// The engine needs from a plugin whose call throws only the basic guarantee: the plugin stays
// consistent, whatever the call did before throwing. It then restores its own consistency with
// the plugins by handing blocks back, which release() can always do:
//
//  * A step-wide call fails (scheduler.schedule(), with every allocator call made inside it;
//    take_pending_copies(); the forward pass through the attention plugin), or the plan breaks
//    the scheduler's contract, or the scheduler makes no progress: the step is abandoned. Every
//    unfinished sequence releases its blocks and waits to be recomputed — exactly a preemption,
//    so outputs do not change (greedy and seeded sampling are invariant under preemption). After
//    kMaxFailedStepsInARow such steps in a row, the plugin is taken to be broken for good and
//    every unfinished request finishes with finish_reason "error" and the last failure; the
//    engine stays usable for new requests. No livelock: that bounds the steps a run can take.
//  * A call for one sequence fails (block_table(), commit()), or its block table cannot hold the
//    step: that sequence alone leaves the batch, releases its blocks and waits; the others run
//    on. After kMaxSequenceFailuresInARow failures without a good step in between, it finishes
//    with "error". A failed step samples no token for it, so its random stream stays aligned.
//  * release() is cleanup: it is retried kReleaseAttempts times; a sequence whose blocks were
//    never taken back is counted in EngineStats::unreleased_sequences.
//  * An offer fails (kv_connector.num_loadable_tokens(), drafter.propose()): the sequence gets no
//    loadable tokens or drafts this step and computes as without the plugin. A connector load
//    that fails (start_load(), wait_for_load()) abandons the step like a step-wide call, and the
//    sequences it was loading compute those tokens from then on. Calls that only inform
//    (on_evicted(), save(), on_accepted(), on_finished()) are counted and otherwise ignored.
// A KV block allocation that fails (reserve() returning false) is not a fault at all: it is
// memory pressure, which the scheduler answers by preempting.
#include <set>

#include "core/engine/engine.h"

namespace loom {

std::string Engine::try_call(const char* what, const std::function<void()>& call) {
  try {
    call();
    return {};
  } catch (const std::exception& e) {
    ++stats_.plugin_failures;
    return std::string(what) + " failed: " + e.what();
  } catch (...) {
    ++stats_.plugin_failures;
    return std::string(what) + " failed: it threw something that is not a std::exception (plugins throw loom::Error)";
  }
}

void Engine::step_wide(const char* what, const std::function<void()>& call) {
  if (std::string error = try_call(what, call); !error.empty()) throw StepFailure(error);
}

void Engine::check_plan(const sdk::SchedulePlan& plan) const {
  std::set<sdk::SeqId> seen;
  auto check = [&](sdk::SeqId id, const char* list) -> const Sequence& {
    auto it = sequences_.find(id);
    if (it == sequences_.end())
      throw Error("the scheduler's plan names sequence " + std::to_string(id) + " (in " + list +
                  "), which is not an unfinished sequence");
    if (!seen.insert(id).second) throw Error("the scheduler's plan names sequence " + std::to_string(id) + " twice");
    return it->second;
  };
  for (const sdk::ScheduledSeq& s : plan.scheduled) {
    const Sequence& seq = check(s.id, "scheduled");
    if (s.num_tokens == 0 || s.start + s.num_tokens > seq.tokens.size())
      throw Error("the scheduler's plan computes tokens [" + std::to_string(s.start) + ", " +
                  std::to_string(s.start + s.num_tokens) + ") of sequence " + std::to_string(s.id) + ", which has " +
                  std::to_string(seq.tokens.size()) + " tokens");
    if (s.start + s.num_tokens + s.num_lookahead_tokens > max_model_len_)
      throw Error("the scheduler's plan runs sequence " + std::to_string(s.id) + " to position " +
                  std::to_string(s.start + s.num_tokens + s.num_lookahead_tokens) + ", past the model's context of " +
                  std::to_string(max_model_len_));
    if (s.num_lookahead_tokens > 0 &&
        (s.start + s.num_tokens != seq.tokens.size() || s.num_lookahead_tokens > seq.drafts.size()))
      throw Error("the scheduler's plan verifies " + std::to_string(s.num_lookahead_tokens) +
                  " draft tokens of sequence " + std::to_string(s.id) + ", which has " +
                  std::to_string(seq.drafts.size()) + " drafts" +
                  (s.start + s.num_tokens != seq.tokens.size() ? " and is not at its last token" : ""));
    if (s.num_loaded_tokens > 0 &&
        (s.num_loaded_tokens > seq.num_loadable_tokens || s.start - s.num_loaded_tokens != seq.loadable_from ||
         s.start < s.num_loaded_tokens))
      throw Error("the scheduler's plan loads tokens [" + std::to_string(s.start - s.num_loaded_tokens) + ", " +
                  std::to_string(s.start) + ") of sequence " + std::to_string(s.id) +
                  ", but the KV connector offered [" + std::to_string(seq.loadable_from) + ", " +
                  std::to_string(seq.loadable_from + seq.num_loadable_tokens) + ")");
  }
  for (sdk::SeqId id : plan.preempted) check(id, "preempted");
  for (const sdk::RejectedSeq& r : plan.rejected) check(r.id, "rejected");
}

std::string Engine::table_for(sdk::SeqId id, std::size_t ctx_len, std::span<const sdk::BlockId>& table) {
  std::string error = try_call("kv_allocator.block_table()", [&] { table = plugins_.allocator->block_table(id); });
  if (!error.empty()) return error;
  if (table.size() * stats_.block_size < ctx_len)
    return "kv_allocator.block_table() failed: sequence " + std::to_string(id) + " has " +
           std::to_string(table.size()) + " blocks, too few for the " + std::to_string(ctx_len) +
           " tokens of this step (the scheduler did not reserve them)";
  for (sdk::BlockId b : table)
    if (b < 0 || static_cast<std::uint64_t>(b) >= stats_.num_blocks)
      return "kv_allocator.block_table() failed: block " + std::to_string(b) + " of sequence " + std::to_string(id) +
             " is outside the pool [0, " + std::to_string(stats_.num_blocks) + ")";
  return {};
}

std::vector<RequestResult> Engine::fail_step(const std::string& error, std::vector<RequestResult> out) {
  ++stats_.failed_steps;
  const bool give_up = ++failed_steps_in_a_row_ >= kMaxFailedStepsInARow;
  for (auto& [id, seq] : sequences_) {
    release_blocks(id);
    forget(id);
    seq.state = sdk::SeqState::waiting;
    seq.num_computed_tokens = 0;
    if (!give_up) continue;
    finish(seq, "error", out);
    out.back().error = error + " (" + std::to_string(kMaxFailedStepsInARow) +
                       " engine steps in a row failed; every unfinished request was stopped)";
    ++stats_.rejected;
    finish_unforked_samples(seq, out);
  }
  if (give_up) {
    sequences_.clear();
    failed_steps_in_a_row_ = 0;
  }
  return out;
}

void Engine::fail_sequence(Sequence& seq, const std::string& error, std::vector<RequestResult>& out) {
  const sdk::SeqId id = seq.id;
  release_blocks(id);
  forget(id);
  seq.state = sdk::SeqState::waiting;
  seq.num_computed_tokens = 0;
  if (++seq.failures_in_a_row < kMaxSequenceFailuresInARow) {
    ++seq.num_preemptions;
    return;
  }
  finish(seq, "error", out);
  out.back().error = error + " (" + std::to_string(kMaxSequenceFailuresInARow) +
                     " times in a row for this request, which was stopped)";
  ++stats_.rejected;
  finish_unforked_samples(seq, out);
  sequences_.erase(id);
}

void Engine::release_blocks(sdk::SeqId id) {
  for (int attempt = 0; attempt < kReleaseAttempts; ++attempt)
    if (try_call("kv_allocator.release()", [&] { plugins_.allocator->release(id, tick_); }).empty()) return;
  ++stats_.unreleased_sequences;
}

}  // namespace loom
