// scheduler/fcfs: continuous batching, first come first served, with chunked prefill (the policy
// of vLLM v1 and nano-vLLM), admitting only what the KV pool can carry to the end.
//
// Each step:
//  1. Running sequences, oldest first, each get their next chunk: one token when decoding, else
//     as much of the uncomputed prompt as the token budget (and max_prefill_chunk) allows. When
//     the pool cannot hold the chunk, the NEWEST running sequence is preempted (released; it
//     recomputes later) and the reservation retried — possibly preempting the sequence itself.
//     Newest first because it has done the least work (the cheapest to recompute) and would come
//     last anyway.
//  2. If nobody was preempted, waiting sequences are admitted in arrival order while the budgets
//     allow: prefix-cache lookup, then a chunk of the rest of the prompt. Admission is by
//     projected need: the blocks held now plus the most the admitted sequences will add at any
//     future step (kv_projection.h) must fit the pool, each sequence growing by the rest of its
//     prompt, then by output_reserve of its remaining output up to max_tokens (lowered to the
//     share finished sequences really generated, output_share.h), and giving its growth back
//     when it finishes. Admitting whatever the next chunk fits instead fills the pool with
//     prompts whose outputs then push each other out (on an H100, 512 requests of 1000 + 1000
//     tokens on Llama-3-8B preempted 207 times). The first one that does not fit stops
//     admission, so later (smaller) requests never overtake it: no starvation. After a
//     preemption admission waits a step, so the pool is not refilled by the sequences just
//     pushed out (thrashing) and no sequence is both preempted and scheduled.
// Preempted sequences keep their arrival, so they are the first to be readmitted.
//
// Optional work the engine offers: a decoding sequence verifies its draft tokens as lookahead
// when the budget and the pool allow (else it decodes one token, preempting nobody for drafts);
// a waiting sequence whose device prefix ends where a KV connector's loadable range begins takes
// those tokens as loaded (always leaving its last prompt token to compute).
//
// Rejection: a sequence whose worst case, max(max_total_tokens, tokens now) slots, needs more
// blocks than the whole pool would wait forever; it is rejected at once with the numbers, and so
// is an empty sequence. Counting max_total_tokens (not one less, although the last sampled token
// never gets KV) keeps the rule independent of how the engine finishes sequences.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "kv_projection.h"
#include "loom/scheduler.h"
#include "output_share.h"

namespace {

using loom::fcfs::KvProjection;
using loom::sdk::KvAllocator;
using loom::sdk::ScheduledSeq;
using loom::sdk::SchedulePlan;
using loom::sdk::SeqState;
using loom::sdk::SequenceView;
using loom::sdk::StepBudget;
using loom::sdk::Tick;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"max_prefill_chunk", loom::sdk::KeyType::integer, "0",
     "Most prompt tokens one sequence computes in one step (0 = limited only by the token budget)"},
    {"output_reserve", loom::sdk::KeyType::number, "1.0",
     "Share of each running sequence's remaining output (up to its max_tokens) that admission keeps KV room "
     "for: 1 admits only what can run to max_tokens without preemption; 0 admits whenever the next chunk "
     "fits and preempts under pressure (vLLM's policy)"},
    {"learn_output_share", loom::sdk::KeyType::boolean, "true",
     "Reserve only the share of max_tokens that finished sequences really generated, when below "
     "output_reserve (requests that stop early at EOS let more sequences run at once)"},
};

class FcfsScheduler final : public loom::sdk::Scheduler {
 public:
  FcfsScheduler(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig& config) {
    std::int64_t chunk = config.integer("max_prefill_chunk");
    if (chunk < 0) throw config.invalid("max_prefill_chunk", "must be 0 (unlimited) or positive");
    max_prefill_chunk_ = static_cast<std::size_t>(chunk);
    const double reserve = config.number("output_reserve");
    if (!(reserve >= 0.0 && reserve <= 1.0)) throw config.invalid("output_reserve", "must be between 0 and 1");
    output_share_.emplace(reserve, config.boolean("learn_output_share"));
  }

  SchedulePlan schedule(std::span<const SequenceView> seqs, KvAllocator& allocator, const StepBudget& budget,
                        Tick now) override {
    output_share_->observe(seqs);
    Step step{seqs,
              allocator,
              now,
              budget.max_num_seqs,
              budget.max_num_batched_tokens,
              {},
              {},
              KvProjection(allocator.block_size())};
    // The engine passes arrival order; sorting (stable, nearly free on sorted input) makes the
    // policy hold even if it did not.
    step.order.resize(seqs.size());
    std::iota(step.order.begin(), step.order.end(), std::size_t{0});
    std::stable_sort(step.order.begin(), step.order.end(),
                     [&](std::size_t a, std::size_t b) { return seqs[a].arrival < seqs[b].arrival; });
    schedule_running(step);
    if (step.plan.preempted.empty()) schedule_waiting(step);
    return std::move(step.plan);
  }

 private:
  struct Step {
    std::span<const SequenceView> seqs;
    KvAllocator& allocator;
    Tick now;
    std::size_t seqs_left;
    std::size_t tokens_left;
    std::vector<std::size_t> order;  // indices into seqs, by arrival
    SchedulePlan plan;
    KvProjection projection;  // of the running and admitted sequences
  };

  // Tokens to compute for `seq` starting at `start`, within the step's remaining budget.
  std::size_t chunk_size(const Step& step, const SequenceView& seq, std::size_t start) const {
    std::size_t n = std::min(seq.tokens.size() - start, step.tokens_left);
    // Also caps the recompute of a preempted sequence, which is a prefill of prompt and output.
    if (max_prefill_chunk_ > 0) n = std::min(n, max_prefill_chunk_);
    return n;
  }

  void add(Step& step, const SequenceView& seq, std::size_t start, std::size_t n, std::size_t loaded = 0,
           std::size_t lookahead = 0) {
    step.plan.scheduled.push_back(ScheduledSeq{seq.id, start, n, loaded, lookahead});
    step.seqs_left -= 1;
    step.tokens_left -= n + lookahead;
  }

  // Draft tokens `seq` may verify after its chunk [start, start + n): only when that chunk is
  // its one decode token, within the token budget, and never past what it may still generate.
  static std::size_t lookahead(const Step& step, const SequenceView& seq, std::size_t start, std::size_t n) {
    if (seq.num_draft_tokens == 0 || n != 1 || start + n != seq.tokens.size()) return 0;
    if (seq.max_total_tokens <= seq.tokens.size() + 1) return 0;
    const std::size_t may_generate = seq.max_total_tokens - seq.tokens.size();
    return std::min({seq.num_draft_tokens, step.tokens_left - n, may_generate - 1});
  }

  // Adds `seq`, whose reserved range ends at `end`, to the step's projection: its prompt all in,
  // then the reserved share of its remaining output, one token a step.
  void project(Step& step, const SequenceView& seq, std::size_t end) const {
    step.projection.add(projected_start(seq, end), projected_steps(seq), step.allocator.block_table(seq.id).size());
  }
  static std::size_t projected_start(const SequenceView& seq, std::size_t end) {
    return std::max(end, seq.tokens.size());
  }
  // The last token it may sample never gets KV: one step fewer than tokens left to generate.
  std::size_t projected_steps(const SequenceView& seq) const {
    const std::size_t output_left =
        seq.max_total_tokens > seq.tokens.size() + 1 ? seq.max_total_tokens - seq.tokens.size() - 1 : 0;
    return static_cast<std::size_t>(std::ceil(output_share_->share() * static_cast<double>(output_left)));
  }

  void schedule_running(Step& step) {
    std::vector<std::size_t> running;
    for (std::size_t i : step.order)
      if (step.seqs[i].state == SeqState::running) running.push_back(i);
    // running[0, alive) are still running this step; preemption shrinks alive from the back.
    std::size_t alive = running.size();
    std::vector<std::size_t> reserved_end(running.size());  // where each one's reserved range ends
    for (std::size_t k = 0; k < alive; ++k) {
      const SequenceView& seq = step.seqs[running[k]];
      std::size_t start = seq.num_computed_tokens;
      reserved_end[k] = start;
      if (step.seqs_left == 0 || step.tokens_left == 0) continue;  // waits for the next step
      if (start >= seq.tokens.size()) continue;                    // nothing to compute (the engine owes a token)
      std::size_t n = chunk_size(step, seq, start);
      std::size_t drafts = lookahead(step, seq, start, n);
      if (drafts > 0 && !step.allocator.reserve(seq.id, start, n + drafts, step.now)) drafts = 0;
      while (drafts == 0 && !step.allocator.reserve(seq.id, start, n, step.now)) {
        const SequenceView& victim = step.seqs[running[--alive]];
        step.allocator.release(victim.id, step.now);
        step.plan.preempted.push_back(victim.id);
        if (alive == k) break;  // it was this sequence itself
      }
      if (alive > k) {
        add(step, seq, start, n, 0, drafts);
        reserved_end[k] = start + n;
      }
    }
    for (std::size_t k = 0; k < alive; ++k) project(step, step.seqs[running[k]], reserved_end[k]);
  }

  void schedule_waiting(Step& step) {
    const std::size_t pool_blocks = step.allocator.num_blocks();
    const std::size_t block_size = step.allocator.block_size();
    // Rejection first, over the whole queue, so a hopeless request never waits behind others.
    std::vector<bool> rejected(step.seqs.size(), false);
    for (std::size_t i : step.order) {
      const SequenceView& seq = step.seqs[i];
      if (seq.state != SeqState::waiting) continue;
      std::string reason = rejection_reason(seq, block_size, pool_blocks);
      if (reason.empty()) continue;
      step.allocator.release(seq.id, step.now);  // no-op unless it holds blocks
      step.plan.rejected.push_back({seq.id, std::move(reason)});
      output_share_->forget(seq.id);
      rejected[i] = true;
    }
    for (std::size_t i : step.order) {
      const SequenceView& seq = step.seqs[i];
      if (seq.state != SeqState::waiting || rejected[i]) continue;
      if (step.seqs_left == 0 || step.tokens_left == 0) return;
      const std::size_t cached = step.allocator.acquire_cached_prefix(seq.id, seq.tokens, step.now);
      std::size_t start = cached, loaded = 0;
      if (seq.num_loadable_tokens > 0 && start == seq.loadable_from) {
        const std::size_t whole_blocks = (seq.tokens.size() - 1 - start) / block_size * block_size;
        loaded = std::min(seq.num_loadable_tokens, whole_blocks);
        start += loaded;
      }
      std::size_t n = chunk_size(step, seq, start);
      // Writes begin after the cached prefix: the connector's loaded tokens, then the chunk.
      const bool alone = step.projection.empty() && step.plan.scheduled.empty();  // must progress
      bool admitted = step.allocator.reserve(seq.id, cached, loaded + n, step.now);
      if (admitted && !alone) {
        const std::size_t held_now = step.allocator.num_blocks() - step.allocator.num_available_blocks();
        const std::size_t growth = step.projection.peak_growth_with(
            projected_start(seq, start + n), projected_steps(seq), step.allocator.block_table(seq.id).size());
        admitted = held_now + growth <= step.allocator.num_blocks();
      }
      if (!admitted) {
        step.allocator.release(seq.id, step.now);  // give back the prefix and slots it took
        return;                                    // FCFS: nobody overtakes it
      }
      project(step, seq, start + n);
      add(step, seq, start, n, loaded);
    }
  }

  static std::string rejection_reason(const SequenceView& seq, std::size_t block_size, std::size_t pool_blocks) {
    if (seq.tokens.empty()) return "the request has no tokens: a prompt needs at least one token";
    std::size_t tokens = std::max(seq.max_total_tokens, seq.tokens.size());
    std::size_t blocks = (tokens + block_size - 1) / block_size;
    if (blocks <= pool_blocks) return {};
    return "the request needs up to " + std::to_string(tokens) + " tokens of KV cache (" + std::to_string(blocks) +
           " blocks of " + std::to_string(block_size) + " tokens) but the pool has only " +
           std::to_string(pool_blocks) + " blocks (" + std::to_string(pool_blocks * block_size) +
           " tokens); shorten the prompt or max_tokens, or give [kv] more blocks";
  }

  std::size_t max_prefill_chunk_ = 0;
  std::optional<loom::fcfs::OutputShare> output_share_;
};

}  // namespace

LOOM_PLUGIN(
    scheduler, "fcfs", "1.0.0",
    "First come first served continuous batching with chunked prefill, admission by projected KV need and preemption",
    FcfsScheduler, kKeys)
