// The engine: the request loop of ARCHITECTURE.md §5, on the CPU or one CUDA device.
//
//   plan = scheduler.schedule(sequences, allocator, budget)   (plugin)
//   block copies for copy-on-write                             (allocator -> KV cache)
//   logits = model.forward(plan, attention)                    (attention plugin inside)
//   tokens = chosen on the model's device (greedy or sampled), or by the host sampler when
//            penalties or min_tokens apply                     (core/sampling)
//   sequences advance; finished ones release their blocks      (cached blocks go to the evictor)
//
// Every policy is a plugin chosen by the config; the engine holds no policy of its own. A
// request that cannot be served finishes alone with an error; the others go on.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  std::uint64_t prompt_tokens = 0;      // of finished requests
  std::uint64_t computed_prompt_tokens = 0;  // prompt tokens actually run through the model
  std::uint64_t generated_tokens = 0;
  std::uint64_t batched_tokens = 0;     // tokens run through the model, all steps
  std::uint64_t preemptions = 0;
  std::uint64_t rejected = 0;
  std::uint64_t plugin_failures = 0;       // plugin calls that threw, contained (engine_recovery.cpp)
  std::uint64_t failed_steps = 0;          // steps abandoned by a step-wide failure, then redone
  std::uint64_t unreleased_sequences = 0;  // sequences whose blocks release() never took back
  sdk::AllocatorStats kv;
  std::uint64_t num_blocks = 0;
  std::uint32_t block_size = 0;
};

// One step as benchmarks account for it (bytes moved and flops): tokens through the model,
// sampling rows, context tokens whose K/V attention read, and (query, key) pairs it scored.
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
  const std::optional<Tokenizer>& tokenizer() const { return tokenizer_; }

 private:
  void fail(const Request& request, std::int32_t index, std::int32_t n, const std::string& message);
  void finish(Sequence& seq, const std::string& reason, std::vector<RequestResult>& out);
  // Appends a sampled token; returns the finish reason or "" while it goes on.
  std::string append_token(Sequence& seq, std::int32_t token);
  double now_s() const;

  // Containment of plugin failures (engine_recovery.cpp; the policy is in docs/reliability.md).
  static constexpr std::uint32_t kMaxFailedStepsInARow = 8;      // then every unfinished request fails
  static constexpr std::uint32_t kMaxSequenceFailuresInARow = 4;  // then that request fails
  static constexpr int kReleaseAttempts = 4;
  // Runs `call`; returns "" or, when it threw, what failed ("<what> failed: <message>").
  std::string try_call(const char* what, const std::function<void()>& call);
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
  sdk::StepBudget budget_;
  std::size_t max_model_len_ = 0;
  std::uint64_t seed_ = 0;
  std::vector<std::int32_t> eos_ids_;
  std::map<sdk::SeqId, Sequence> sequences_;  // unfinished, in arrival (= id) order
  std::vector<RequestResult> finished_;       // failed at submit, returned by the next step
  sdk::SeqId next_id_ = 1;
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
};

}  // namespace loom
