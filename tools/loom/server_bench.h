// `loom bench --server URL`: an online benchmark of a running OpenAI-compatible server (loom serve,
// vLLM, ...), in the manner of vLLM's benchmark_serving: random token-id prompts sent at Poisson
// arrivals of a given rate, each streamed, every event timed on arrival. Reports request and
// token throughput, TTFT, TPOT, ITL and E2E percentiles, and goodput (requests per second that
// met both latency objectives).
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "tools/loom/random_requests.h"

namespace loom::cli {

struct ServerBenchOptions {
  std::string url;                                        // http://HOST:PORT
  double rate = std::numeric_limits<double>::infinity();  // requests per second; inf: all at once
  int num_prompts = 100;
  Range input{128, 128}, output{128, 128};
  std::uint64_t seed = 0;
  double slo_ttft_ms = 1000, slo_tpot_ms = 100;  // goodput's objectives
  bool json = false;
};

// Runs the benchmark and prints its report (a table, or JSON). Returns the exit code: 0, or 3
// when requests failed. Throws UsageError for a bad URL or a server that cannot be reached.
int run_server_bench(const ServerBenchOptions& options);

}  // namespace loom::cli
