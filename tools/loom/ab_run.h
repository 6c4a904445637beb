// One arm of an A/B experiment: a workload replayed through an engine built from one config, on
// a virtual clock, and the metrics that compare arms.
//
// Virtual clock: requests arrive at their trace's arrival_time; every engine step advances the
// clock by step_ms + token_ms x (tokens the step computed). Latencies are therefore a function
// of the policies' decisions alone (how many tokens each step had to compute), not of machine
// noise; throughput is reported in real time as well. With `measured`, a step advances the clock
// by the time it really took instead (a GPU's latencies, with the idle gaps between arrivals
// skipped rather than waited for).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/io/model_weights.h"
#include "core/plugin/plugin_registry.h"
#include "core/requests/request.h"
#include "tools/loom/run_summary.h"

namespace loom::cli {

struct StepCost {
  double step_ms = 1.5;   // fixed cost of one engine step
  double token_ms = 0.5;  // cost of each token the step computes (prefill or decode)
  bool measured = false;  // instead of the two above, each step's wall time
  const char* clock_name() const { return measured ? "measured" : "virtual"; }
};

struct ArmResult {
  std::string name;
  RunSummary summary;                // latencies on the virtual clock
  double real_wall_s = 0;
  double virtual_s = 0;
  std::uint64_t hit_blocks = 0, lookup_blocks = 0;
  std::map<std::string, std::vector<std::int32_t>> outputs;  // request id#index -> tokens
  struct Timing {
    std::size_t prompt_tokens = 0;
    double ttft_ms = -1;  // on the arm's clock; -1 when no token came
  };
  std::map<std::string, Timing> timings;  // request id#index -> its prompt and first token
  Failures failures;                 // requests that failed, and the first one's reason
};

// Replays `requests` (sorted by arrival_time) through an engine made from `config` with a copy of
// `model`; a non-null `progress_label` draws a progress line behind it on standard error (left
// for the caller to erase). Throws what the engine's construction throws.
ArmResult run_arm(const std::string& name, const Config& config, PluginRegistry& registry, const io::LoadedModel& model,
                  const std::vector<Request>& requests, const StepCost& cost, const char* progress_label = nullptr);

}  // namespace loom::cli
