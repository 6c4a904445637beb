// `loom bench --report DIR`: the motivation experiments of an inference engine, measured for the
// model and device at hand and written as DIR/report.md with SVG plots and DIR/report.json:
//   1. where a decode step's time goes (attention, GEMMs, norms and activations, sampling, host)
//      against batch size, and 2. against context length;
//   3. prefill latency against prompt length;
//   4. KV-cache memory against batch size and sequence length, next to the weights;
//   5. generating with the KV cache against recomputing the context for every token.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

#include "core/engine/engine.h"

namespace loom::cli {

struct BenchReportContext {
  std::string command;  // as typed, for the report's header
  std::string config_file;
  std::uint64_t seed = 0;
};

// Runs the experiments on `engine` (an idle engine: nothing submitted) and writes the report into
// `dir` (created if missing). Progress goes to `log`. Throws Error when a measured request fails.
void write_bench_report(Engine& engine, const BenchReportContext& context, const std::filesystem::path& dir,
                        std::ostream& log);

}  // namespace loom::cli
