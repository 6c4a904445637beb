// What a batch run did, in numbers: requests, tokens, throughput, latency percentiles and KV
// cache behaviour. `loom generate` prints it at the end; `loom bench` prints and exports it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/requests/result_writer.h"

namespace loom::cli {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

// Nearest-rank percentiles of `values` (empty -> zeros).
Percentiles percentiles(std::vector<double> values);

struct RunSummary {
  std::size_t requests = 0, failed = 0;
  std::size_t skipped_lines = 0;  // input lines that were not requests (reported as they were read)
  std::uint64_t prompt_tokens = 0, generated_tokens = 0, computed_prompt_tokens = 0;
  std::uint64_t loaded_tokens = 0;  // prompt tokens a KV connector loaded instead of computing
  // The KV connector's own counts over the run (KvConnector::counts(); cumulative ones
  // differenced by the caller when it measures a part of a run).
  std::vector<std::pair<std::string, std::uint64_t>> connector_counts;
  // Of the prompt tokens, the share not computed: served by the prefix cache, a connector's
  // loads or forked samples (the prefix hit rate counts device-cache lookups only).
  double served_prompt_fraction() const {
    return prompt_tokens > computed_prompt_tokens ? double(prompt_tokens - computed_prompt_tokens) / prompt_tokens : 0;
  }
  // Prompt tokens loaded per tier, from the connector's counts named TIER_loaded_tokens, in order.
  std::vector<std::pair<std::string, std::uint64_t>> loaded_by_tier() const;
  // The connector's count of that name; 0 when it reports none.
  std::uint64_t connector_count(const std::string& name) const;
  double wall_s = 0;
  Percentiles ttft_ms, tpot_ms, e2e_ms;
  double prefix_hit_rate = 0;  // full-block lookups found in the prefix cache
  std::uint64_t preemptions = 0, evictions = 0;
  std::uint64_t computed_tokens = 0, recomputed_tokens = 0;  // all through the model; of those, computed before
  double recomputed_fraction() const { return computed_tokens ? double(recomputed_tokens) / computed_tokens : 0; }
  std::uint64_t num_blocks = 0;
  std::uint32_t block_size = 0;
  // Speculative decoding: draft tokens verified, accepted, and the (sequence, step) pairs that
  // verified them; each such pair emitted its accepted drafts plus one token of the target's.
  std::uint64_t draft_tokens = 0, accepted_draft_tokens = 0, verify_rows = 0;
  double acceptance_rate() const { return draft_tokens ? double(accepted_draft_tokens) / draft_tokens : 0; }
  double tokens_per_verify() const { return verify_rows ? double(accepted_draft_tokens + verify_rows) / verify_rows : 0; }

  double output_tokens_per_s() const { return wall_s > 0 ? generated_tokens / wall_s : 0; }
  double total_tokens_per_s() const { return wall_s > 0 ? (prompt_tokens + generated_tokens) / wall_s : 0; }
};

RunSummary summarize(const std::vector<RequestResult>& results, const EngineStats& stats, double wall_s);

// A few aligned lines for people.
void print_summary(std::ostream& out, const RunSummary& summary);

// Requests of a run that failed, and the first one's id and reason.
struct Failures {
  std::size_t failed = 0, requests = 0;
  std::string first_id, first_error;
  void add(const std::vector<RequestResult>& results);
  void merge(const Failures& other);
};

// Exit code of a run whose requests were all tried: 0, or kFailedRequestsExitCode when any
// failed and `accept_failures` is off, after telling `log` how many and the first reason.
inline constexpr int kFailedRequestsExitCode = 3;
int exit_code_for_failures(const Failures& failures, bool accept_failures, const char* command, std::ostream& log);

}  // namespace loom::cli
