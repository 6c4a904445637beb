// The outputs of `loom ab`: a table on the terminal, report.md, report.json and plot.svg
// (prefix-cache hit rate and TTFT per arm, with the spread over seeds).
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "tools/loom/ab_run.h"

namespace loom::cli {

// One arm's results over every seed it ran with.
struct ArmSeries {
  std::string name;
  std::vector<ArmResult> runs;  // one per seed
  bool outputs_identical = true;  // to the first arm, for every seed
};

struct AbContext {
  std::string workload;  // what was replayed
  std::string model;
  StepCost cost;
  std::vector<std::uint64_t> seeds;
};

// `clock`: the latencies' clock, StepCost::clock_name().
void print_ab_table(std::ostream& out, const std::vector<ArmSeries>& arms, const char* clock);
// Why an arm's numbers cannot be compared with the others' ("" when they can): failed requests
// drop out of its latencies and rates, which then look better than they are.
std::string not_comparable(const ArmSeries& arm);
void write_ab_report(const std::filesystem::path& dir, const AbContext& context, const std::vector<ArmSeries>& arms);

}  // namespace loom::cli
