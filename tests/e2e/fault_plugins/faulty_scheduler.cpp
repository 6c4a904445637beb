// scheduler/faulty: the real scheduler (`inner`, e.g. fcfs) whose schedule() throws at random
// (fault_source.h) — before planning, or after the real scheduler has reserved, preempted and
// released through the allocator, so that the engine loses a plan whose effects are real.
#include "fault_plugins/fault_source.h"
#include "fault_plugins/inner_plugin.h"
#include "loom/scheduler.h"

namespace {

class FaultyScheduler final : public loom::sdk::Scheduler {
 public:
  FaultyScheduler(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : faults_("scheduler", config), inner_(config.string("inner"), info) {}

  loom::sdk::SchedulePlan schedule(std::span<const loom::sdk::SequenceView> seqs, loom::sdk::KvAllocator& allocator,
                                   const loom::sdk::StepBudget& budget, loom::sdk::Tick now) override {
    return faults_.call("schedule", [&] { return inner_->schedule(seqs, allocator, budget, now); });
  }

 private:
  loom::faults::FaultSource faults_;
  loom::faults::InnerPlugin<loom::sdk::Scheduler> inner_;
};

}  // namespace

LOOM_PLUGIN(scheduler, "faulty", "1.0.0", "Test fixture: a real scheduler whose schedule() throws at random",
            FaultyScheduler, loom::faults::kCommonKeys)
