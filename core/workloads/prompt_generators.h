// The prompts of each workload kind, in arrival order; write_workload (workload.h) adds the
// arrival times and writes the lines. Internal to core/workloads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/workloads/workload.h"

namespace loom::workloads {

struct TracePrompt {
  std::string id;                    // names the request's group, e.g. "sys-p0-17"
  std::vector<std::int32_t> tokens;  // ids in [3, vocab_size)
};

// Prefix-sharing unit the scan kind guarantees one-off prompts do not share (a KV-cache block).
inline constexpr std::size_t kScanBlockTokens = 16;

// spec.requests prompts of spec.kind; `spec` has been checked (validate_workload_spec).
std::vector<TracePrompt> generate_prompts(const WorkloadSpec& spec);

}  // namespace loom::workloads
