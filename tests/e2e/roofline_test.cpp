// `loom bench`'s rooflines (tools/loom/roofline.h) on a small model: the workload's roofline
// counts each prompt token once and each output token once, needs more steps (weight reads)
// when the KV pool or a budget cannot hold the batch, and equals the steps' roofline for a run
// whose steps are the best packing.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <memory>

#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "core/model/cpu_model.h"
#include "tools/loom/roofline.h"

namespace loom::cli {
namespace {

namespace fs = std::filesystem;

const CpuModel& model() {
  static const std::unique_ptr<CpuModel> m = [] {
    const fs::path dir = fs::temp_directory_path() / ("loom_roofline_" + std::to_string(::getpid()));
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);
    io::write_random_model(spec, dir);
    auto loaded = std::make_unique<CpuModel>(io::load_hf_model(dir));
    fs::remove_all(dir);
    return loaded;
  }();
  return *m;
}

// A machine where bytes always bind (flops are free) and one where flops always bind.
const runtime::DeviceLimits kMemoryBound{1.0, 1e9, 0, 0};
const runtime::DeviceLimits kComputeBound{1e9, 1e-9, 0, 0};

// The steps the engine runs for sequences prefilled together in one step, then decoding together.
std::vector<StepRecord> packed_steps(const std::vector<RequestLengths>& requests) {
  std::vector<StepRecord> steps(1);
  for (const RequestLengths& r : requests) {
    steps[0].tokens += r.prompt;
    steps[0].rows += 1;
    steps[0].kv_tokens += r.prompt;
    steps[0].attention_pairs += r.prompt * (r.prompt + 1) / 2;
  }
  for (std::uint64_t t = 1;; ++t) {
    StepRecord s;
    for (const RequestLengths& r : requests) {
      if (t >= r.output) continue;
      s.tokens += 1;
      s.rows += 1;
      s.kv_tokens += r.prompt + t;
      s.attention_pairs += r.prompt + t;
    }
    if (s.tokens == 0) break;
    steps.push_back(s);
  }
  return steps;
}

TEST(Roofline, TheWorkloadsRooflineEqualsThatOfItsBestPackedSteps) {
  const std::vector<RequestLengths> requests = {{17, 9}, {5, 30}, {40, 1}, {8, 12}};
  for (const auto* limits : {&kMemoryBound, &kComputeBound}) {
    const Roofline want = steps_roofline(model(), packed_steps(requests), limits);
    const Roofline got = workload_roofline(model(), requests, {}, limits);
    EXPECT_DOUBLE_EQ(got.bytes, want.bytes);
    EXPECT_DOUBLE_EQ(got.flops, want.flops);
  }
  // Per step, the max of the two bounds is summed; the workload's is the max of the sums.
  EXPECT_LE(workload_roofline(model(), requests, {}, &kMemoryBound).seconds,
            steps_roofline(model(), packed_steps(requests), &kMemoryBound).seconds * (1 + 1e-12));
}

TEST(Roofline, ARecomputedPrefillRaisesTheStepsRooflineButNotTheWorkloads) {
  const std::vector<RequestLengths> requests = {{64, 16}};
  std::vector<StepRecord> steps = packed_steps(requests);
  const Roofline once = steps_roofline(model(), steps, &kComputeBound);
  steps.insert(steps.begin() + 4, steps.front());  // preempted after three decodes: the prompt again
  EXPECT_GT(steps_roofline(model(), steps, &kComputeBound).flops, once.flops);
  EXPECT_DOUBLE_EQ(workload_roofline(model(), requests, {}, &kComputeBound).flops, once.flops);
}

TEST(Roofline, APoolOrBudgetTooSmallForTheBatchNeedsMoreStepsOfWeightReads) {
  const std::vector<RequestLengths> requests(64, RequestLengths{100, 100});
  const double roomy = workload_roofline(model(), requests, {}, &kMemoryBound).bytes;
  const double weights = static_cast<double>(model().weight_bytes());
  // The pool holds a quarter of the token-steps the batch keeps resident per step: 4x the steps.
  const double resident = 100.0 + 99 * 100 + 99.0 * 100 / 2;
  const std::uint64_t pool = static_cast<std::uint64_t>(64 * resident / 400);
  const double tight = workload_roofline(model(), requests, {0, 0, pool}, &kMemoryBound).bytes;
  EXPECT_NEAR(tight - roomy, weights * (400 - 100), weights);
  // At most 16 sequences a step: 6400 rows need 400 steps.
  EXPECT_DOUBLE_EQ(workload_roofline(model(), requests, {16, 0, 0}, &kMemoryBound).bytes - roomy, weights * 300);
}

}  // namespace
}  // namespace loom::cli
