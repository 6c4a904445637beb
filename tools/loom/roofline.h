// Rooflines of a `loom bench` run: the least time its work could take on a device that moves
// `copy_gb_s` and computes `gemm_tflops`, from the model's shape alone.
//  - The workload's roofline: the work the requests need, each prompt token prefilled once, each
//    output token decoded once, K/V read as the sequences grow, in as few steps as the budgets
//    (sequences and tokens per step) and the KV pool allow; every step reads the streamed weights
//    once. Recomputation after preemption or a poor packing lowers the run's ratio to it.
//  - The steps' roofline: the same counts over the steps that ran (what the run's own schedule
//    could have reached).
// The embedding table of an untied model is not streamed (Model::weight_bytes leaves it out): a
// step reads only its tokens' rows.
#pragma once

#include <cstdint>
#include <vector>

#include "core/engine/engine.h"
#include "core/model/model.h"
#include "core/runtime/device_limits.h"

namespace loom::cli {

struct Roofline {
  double bytes = 0, flops = 0, seconds = 0;
};

struct RequestLengths {
  std::uint64_t prompt = 0, output = 0;
};

struct PackingLimits {
  std::uint64_t max_num_seqs = 0, max_num_batched_tokens = 0, kv_tokens = 0;  // 0 = no limit
};

Roofline steps_roofline(const Model& model, const std::vector<StepRecord>& steps, const runtime::DeviceLimits* limits);

Roofline workload_roofline(const Model& model, const std::vector<RequestLengths>& requests,
                           const PackingLimits& packing, const runtime::DeviceLimits* limits);

}  // namespace loom::cli
