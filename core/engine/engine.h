// The engine: the request loop of ARCHITECTURE.md §5, on the CPU or one CUDA device. One step
// (engine_step.cpp) runs these phases, each a function named after its line:
//
//   offer_external_kv   kv_connector: tokens waiting sequences could load instead of computing
//                       (or kLoadPending: that sequence sits the step out)
//   propose_drafts      drafter: draft tokens for greedy sequences about to decode
//   schedule            scheduler: the plan (chunks, loads, lookahead); preempted and rejected
//   hand_over_blocks    allocator: block copies done; evicted blocks handed to the connector
//   lay_out_batch       tokens, drafts, positions, block tables, logit rows of the step
//   load_external_kv    kv_connector: loads started
//   run_model           kv_connector: loads waited for; forward (attention plugin inside); outputs
//   commit_kv           drafts verified; allocator: KV committed, rejected drafts' slots trimmed
//   emit_tokens         accepted drafts and the sampled token appended; finish reasons; the
//                       other samples of an n > 1 request fork from a sample 0 done with its prompt
//   save_external_kv    kv_connector: the step's new full blocks saved
//   retire_finished     finished sequences release their blocks; plugins told
//
// Before the model is loaded the attention backend says whether it runs on the device, and the
// parallel plugin what each rank holds: one rank runs the CPU or CUDA model runner; on the CPU,
// several run pipeline stages (pipeline_model.h) or shares of every layer, each rank a thread
// (sharded_model.h), meeting in the plugin's collectives. Every policy is a plugin chosen by the config; the engine holds no policy of its own. A
// request that cannot be served finishes alone with an error; the others go on. A plugin call
// that throws is contained once, where the phase makes it (engine_recovery.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "core/engine/engine_plugins.h"
#include "core/engine/sequence.h"
#include "core/io/model_weights.h"
#include "core/model/kv_cache.h"
#include "core/model/model.h"
#include "core/requests/request.h"
#include "core/requests/result_writer.h"
#include "core/tokenizer/tokenizer.h"

namespace loom {

struct EngineStats {
  std::uint64_t steps = 0;
  std::uint64_t prompt_tokens = 0;           // of finished requests
  std::uint64_t computed_prompt_tokens = 0;  // prompt tokens actually run through the model
  std::uint64_t generated_tokens = 0;
  std::uint64_t batched_tokens = 0;  // tokens run through the model, all steps
  std::uint64_t recomputed_tokens = 0;  // of those, positions computed before (lost to preemption or a failed step)
  std::uint64_t preemptions = 0;
  std::uint64_t rejected = 0;
  std::uint64_t plugin_failures = 0;        // plugin calls that threw, contained (engine_recovery.cpp)
  std::uint64_t failed_steps = 0;           // steps abandoned by a step-wide failure, then redone
  std::uint64_t unreleased_sequences = 0;   // sequences whose blocks release() never took back
  std::uint64_t loaded_tokens = 0;          // prompt tokens a KV connector loaded instead of computing
  std::uint64_t saved_blocks = 0;           // full blocks handed to a KV connector's save()
  std::uint64_t draft_tokens = 0;           // draft tokens verified by the target model
  std::uint64_t accepted_draft_tokens = 0;  // of those, accepted
  std::uint64_t verify_rows = 0;            // (sequence, step) pairs that verified drafts
  sdk::AllocatorStats kv;
  std::vector<std::pair<std::string, std::uint64_t>> connector_counts;  // KvConnector::counts()
  std::uint64_t num_blocks = 0;
  std::uint32_t block_size = 0;
};

// One step as benchmarks account for it (bytes moved and flops): tokens through the model,
// sampling rows, context tokens whose K/V attention read, and (query, key) pairs it scored.
// What a sample still running has produced so far, for streaming (Engine::visit_progress).
struct SampleProgress {
  const std::string& request_id;
  std::int32_t index;
  std::span<const std::int32_t> token_ids;  // generated so far
  // The generated text that can no longer change: all of it, less any end that could still
  // become a stop string (and all of it before min_tokens, when stop strings are set).
  std::string_view text;
  std::span<const TokenLogprobs> logprobs;  // per token of token_ids, when the request asked
};

struct StepRecord {
  std::uint32_t tokens = 0;
  std::uint32_t rows = 0;
  std::uint64_t kv_tokens = 0;
  std::uint64_t attention_pairs = 0;
};

class Engine {
 public:
  // Loads and configures every plugin the config names (nothing runs if one is refused) and
  // sizes the KV pool. Throws ConfigError / PluginError for a bad config.
  Engine(const Config& config, PluginRegistry& registry, io::LoadedModel model, std::optional<Tokenizer> tokenizer);
  ~Engine();

  // Adds a request (n samples become n sequences). A request that can never be served (empty
  // prompt, token outside the vocabulary, too long, invalid parameters, text without a
  // tokenizer) is finished at once with finish_reason "error"; step() returns it.
  void submit(const Request& request);

  bool has_unfinished() const { return !sequences_.empty() || !finished_.empty(); }

  // Stops every sample of `request_id` that has not finished (a server's client went away): its
  // blocks are released, plugins told, and its result, finish_reason "abort" with the tokens so
  // far, comes from the next step(). Returns the number of samples stopped. (engine_streaming.cpp)
  std::size_t abort(const std::string& request_id);
  // Calls `visit` for each unfinished sample that has generated a token, in arrival order.
  void visit_progress(const std::function<void(const SampleProgress&)>& visit) const;
  std::size_t num_running() const;  // samples whose KV is (partly) computed
  std::size_t num_waiting() const;  // samples waiting to be scheduled, preempted ones included

  // Runs one step and returns the results of the sequences that finished during it. A plugin
  // that throws does not end the run: its failure is contained to the step or the sequence
  // (see fail_step and fail_sequence below, and docs/reliability.md).
  std::vector<RequestResult> step();

  EngineStats stats() const;

  // Replaces the wall clock the engine stamps arrivals, first tokens and finishes with (seconds).
  // `loom ab` replays traces on a virtual clock so that latencies do not depend on machine noise.
  void set_clock(std::function<double()> now) { clock_ = std::move(now); }
  const Model& model() const { return *model_; }
  Model& model() { return *model_; }
  // Appends a StepRecord per model step to `log` (nullptr stops); `loom bench` computes rooflines.
  void record_steps(std::vector<StepRecord>* log) { step_log_ = log; }
  const sdk::StepBudget& budget() const { return budget_; }
  // The longest sequence (prompt and output) served: the model's context or [engine] max_model_len.
  std::size_t max_model_len() const { return max_model_len_; }
  const std::optional<Tokenizer>& tokenizer() const { return tokenizer_; }

 private:
  void fail(const Request& request, std::int32_t index, std::int32_t n, std::size_t prompt_tokens,
            const std::string& message);
  void finish(Sequence& seq, const std::string& reason, std::vector<RequestResult>& out);
  // Appends a sampled token; returns the finish reason or "" while it goes on.
  std::string append_token(Sequence& seq, std::int32_t token);
  double now_s() const;

  // A step-wide failure: the phase that met it throws, step() abandons the step (fail_step).
  struct StepFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  // One step's work as its phases hand it on (engine_step.cpp).
  struct RowGroup {  // the logit rows of one sequence that samples this step
    Sequence* seq = nullptr;
    std::size_t first_row = 0;
    std::size_t lookahead = 0;  // draft tokens verified; the group has lookahead + 1 rows
    std::size_t accepted = 0;   // drafts the target model agreed with
    std::string finish_reason;  // set by emit_tokens when the sequence ends
    // Drafts of a sampled sequence (or one with penalties) are verified on the host from the
    // rows' logits (verify_on_host): the token it emits after the accepted drafts, and its
    // random stream after the draws, kept if the step counts.
    bool host_verified = false;
    std::int32_t token = 0;
    SequenceRng rng{0};
  };
  struct StepWork {
    std::vector<RequestResult> out;
    sdk::SchedulePlan plan;
    std::vector<std::int32_t> tokens, positions, logit_rows;
    std::vector<sdk::AttentionSeq> layout;
    std::vector<const sdk::ScheduledSeq*> scheduled_of;  // the plan entry of each layout entry
    std::vector<RowGroup> groups;
    struct PromptRow {  // a logit row for a prompt log-probability (Sequence::prompt_logprobs)
      Sequence* seq = nullptr;
      std::size_t position = 0;  // the row's position: it gives token position + 1's log-probability
      std::int32_t batch_index = 0;  // the position's token in the step's batch
    };
    std::vector<PromptRow> prompt_rows;  // logit rows first_prompt_row.., after the groups' rows
    std::size_t first_prompt_row = 0;
    std::vector<sdk::SeqId> loading;                               // sequences whose KV the connector loads
    std::vector<std::pair<sdk::SeqId, std::string>> seq_failures;  // handled after the step
    bool failed(sdk::SeqId id) const;
  };
  void offer_external_kv();
  void propose_drafts();
  void schedule(StepWork& work);
  void hand_over_blocks(StepWork& work);
  std::vector<RequestResult> idle_step(StepWork work);
  void fit_prompt_rows(std::vector<sdk::ScheduledSeq>& scheduled) const;
  void lay_out_batch(StepWork& work);
  void load_external_kv(StepWork& work);
  void run_model(StepWork& work);
  void commit_kv(StepWork& work);
  void verify_on_host(RowGroup& g);
  void adapt_drafts(Sequence& seq, std::size_t proposed, std::size_t accepted) const;
  void emit_tokens(StepWork& work);
  void save_external_kv(StepWork& work);
  void retire_finished(StepWork& work);
  // Sample 0 of an n > 1 request has computed its prompt: the other samples fork from it.
  void fork_samples(Sequence& parent);
  // A sample 0 that ends before forking ends its unforked samples the same way (out.back() is its
  // result).
  void finish_unforked_samples(Sequence& parent, std::vector<RequestResult>& out);
  // Tells the connector and drafter that `id` stopped (finished, preempted or failed).
  void forget(sdk::SeqId id);
  // Computes and holds the attention backend's pinned prefix, if it names one
  // (engine_pinned_prefix.cpp). Throws ConfigError for one that cannot be kept.
  void pin_prefix(bool prefix_caching);

  // Containment of plugin failures (engine_recovery.cpp; the policy is in docs/reliability.md).
  static constexpr std::uint32_t kMaxFailedStepsInARow = 8;       // then every unfinished request fails
  static constexpr std::uint32_t kMaxSequenceFailuresInARow = 4;  // then that request fails
  static constexpr int kReleaseAttempts = 4;
  // Runs `call`; returns "" or, when it threw, what failed ("<what> failed: <message>").
  std::string try_call(const char* what, const std::function<void()>& call);
  // Runs a step-wide call; when it throws, the step is abandoned (step() catches StepFailure
  // and calls fail_step).
  void step_wide(const char* what, const std::function<void()>& call);
  // Throws Error when the plan breaks the scheduler's contract in a way the engine cannot run.
  void check_plan(const sdk::SchedulePlan& plan) const;
  // The block table of `id` for a step whose context is ctx_len tokens, or why there is none.
  std::string table_for(sdk::SeqId id, std::size_t ctx_len, std::span<const sdk::BlockId>& table);
  // A step-wide call failed: every sequence gives its blocks back and waits to be recomputed, or,
  // after kMaxFailedStepsInARow such steps, fails. Returns `out` plus those failures.
  std::vector<RequestResult> fail_step(const std::string& error, std::vector<RequestResult> out);
  // A call for one sequence failed: it gives its blocks back and waits, or fails alone.
  void fail_sequence(Sequence& seq, const std::string& error, std::vector<RequestResult>& out);
  // allocator.release(), retried kReleaseAttempts times when it throws.
  void release_blocks(sdk::SeqId id);

  std::unique_ptr<Model> model_;
  std::optional<Tokenizer> tokenizer_;
  EnginePlugins plugins_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<sdk::KvAllocator> scheduler_allocator_;  // the allocator through a PrefixCacheGate
  sdk::StepBudget budget_;
  std::size_t max_model_len_ = 0;
  std::uint64_t seed_ = 0;
  std::vector<std::int32_t> eos_ids_;
  std::map<sdk::SeqId, Sequence> sequences_;  // unfinished, in arrival (= id) order
  std::vector<RequestResult> finished_;       // failed at submit, returned by the next step
  sdk::SeqId next_id_ = 1;
  sdk::SeqId pinned_seq_ = 0;  // holds the pinned prefix's blocks; 0: none
  std::uint64_t next_request_index_ = 0;
  sdk::Tick tick_ = 0;
  std::uint32_t failed_steps_in_a_row_ = 0;
  EngineStats stats_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::function<double()> clock_;
  // Step buffers, reused.
  std::vector<StepRecord>* step_log_ = nullptr;
  std::vector<float> logits_;
  std::vector<OutputRow> output_rows_;
  std::vector<SequenceRng> row_rngs_;  // each sampled row's stream after its draw; kept if the step counts
  std::vector<std::int32_t> tokens_;
  std::vector<TokenLogprobs> row_logprobs_;  // rows whose OutputRow::logprobs >= 0 (read_logprobs)
};

}  // namespace loom
