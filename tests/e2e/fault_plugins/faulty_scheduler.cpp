// scheduler/faulty: the real scheduler (`inner`, e.g. fcfs) whose schedule() throws at random
// (fault_source.h) — before planning, or after the real scheduler has reserved, preempted and
// released through the allocator, so that the engine loses a plan whose effects are real.
//   bad_plan_rate  probability that the real plan is returned with one more entry that breaks
//                  the contract: a sequence that does not exist.
#include <algorithm>

#include "fault_plugins/fault_source.h"
#include "fault_plugins/inner_plugin.h"
#include "loom/scheduler.h"

namespace {

class FaultyScheduler final : public loom::sdk::Scheduler {
 public:
  FaultyScheduler(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : faults_("scheduler", config), inner_(config.string("inner"), info), bad_plan_rate_(config.number("bad_plan_rate")) {}

  loom::sdk::SchedulePlan schedule(std::span<const loom::sdk::SequenceView> seqs, loom::sdk::KvAllocator& allocator,
                                   const loom::sdk::StepBudget& budget, loom::sdk::Tick now) override {
    loom::sdk::SchedulePlan plan =
        faults_.call("schedule", [&] { return inner_->schedule(seqs, allocator, budget, now); });
    if (faults_.fires("schedule", "bad", bad_plan_rate_)) {
      loom::sdk::SeqId unknown = 1;
      for (const auto& seq : seqs) unknown = std::max(unknown, seq.id + 1);
      plan.scheduled.push_back({unknown, 0, 1});
    }
    return plan;
  }

 private:
  loom::faults::FaultSource faults_;
  loom::faults::InnerPlugin<loom::sdk::Scheduler> inner_;
  double bad_plan_rate_;
};

const loom::sdk::ConfigKeySpec kKeys[] = {
    loom::faults::kCommonKeys[0], loom::faults::kCommonKeys[1], loom::faults::kCommonKeys[2],
    loom::faults::kCommonKeys[3], loom::faults::kCommonKeys[4],
    {"bad_plan_rate", loom::sdk::KeyType::number, "0.0", "probability that a plan names a sequence that does not exist"},
};

}  // namespace

LOOM_PLUGIN(scheduler, "faulty", "1.0.0", "Test fixture: a real scheduler whose schedule() throws at random",
            FaultyScheduler, kKeys)
