#include "tools/loom/ab_run.h"

#include <algorithm>
#include <chrono>

#include "core/engine/engine.h"
#include "tools/loom/progress.h"

namespace loom::cli {

ArmResult run_arm(const std::string& name, const Config& config, PluginRegistry& registry, const io::LoadedModel& model,
                  const std::vector<Request>& requests, const StepCost& cost, const char* progress_label) {
  Engine engine(config, registry, model, std::nullopt);
  // During a step the clock already includes that step's cost (its tokens are counted before the
  // forward pass), so first tokens and finishes are stamped after the compute they needed.
  double virtual_now = 0;
  bool in_step = false;
  std::uint64_t step_base = 0;
  const Request* arriving = nullptr;  // stamped with its trace time, so waiting for a step counts
  std::chrono::steady_clock::time_point step_start;
  auto clock = [&] {
    if (arriving) return arriving->arrival_time;
    if (!in_step) return virtual_now;
    if (cost.measured)
      return virtual_now + std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    const double tokens = static_cast<double>(engine.stats().batched_tokens - step_base);
    return virtual_now + (cost.step_ms + cost.token_ms * tokens) / 1e3;
  };
  engine.set_clock(clock);

  std::vector<RequestResult> results;
  std::size_t next = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_draw = start;
  while (next < requests.size() || engine.has_unfinished()) {
    if (!engine.has_unfinished() && next < requests.size())
      virtual_now = std::max(virtual_now, requests[next].arrival_time);  // idle: jump to the next arrival
    while (next < requests.size() && requests[next].arrival_time <= virtual_now) {
      arriving = &requests[next++];
      engine.submit(*arriving);
      arriving = nullptr;
    }
    step_base = engine.stats().batched_tokens;
    in_step = true;
    step_start = std::chrono::steady_clock::now();
    std::vector<RequestResult> done = engine.step();
    virtual_now = clock();
    in_step = false;
    for (RequestResult& r : done) results.push_back(std::move(r));
    const auto now = std::chrono::steady_clock::now();
    if (progress_label && now - last_draw > std::chrono::milliseconds(250)) {  // a few redraws a second
      draw_progress(results.size(), requests.size(), engine.stats().generated_tokens,
                    std::chrono::duration<double>(now - start).count(), progress_label);
      last_draw = now;
    }
  }
  ArmResult arm;
  arm.name = name;
  arm.real_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  arm.virtual_s = virtual_now;
  const EngineStats stats = engine.stats();
  arm.summary = summarize(results, stats, arm.real_wall_s);
  arm.hit_blocks = stats.kv.hit_blocks;
  arm.lookup_blocks = stats.kv.lookup_blocks;
  for (const RequestResult& r : results) {
    const std::string key = r.id + "#" + std::to_string(r.index);
    arm.outputs[key] = r.token_ids;
    arm.timings[key] = {r.prompt_tokens, r.first_token_s >= 0 ? (r.first_token_s - r.arrival_s) * 1e3 : -1};
  }
  arm.failures.add(results);
  return arm;
}

}  // namespace loom::cli
