// Time per named phase of a model's forward passes, when profiling is asked for
// (LOOM_PROFILE=1): the GPU runner times its phases with CUDA events (cuda_step_timer.h), the CPU
// runner with the host clock (PhaseClock below). `loom bench` prints the table and
// `loom bench --report` groups the phases into attention, GEMMs, norms and activations, and
// sampling (phase_category).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace loom {

// Seconds per phase name, summed over the profiled steps.
using PhaseSeconds = std::map<std::string, double>;

// LOOM_PROFILE=1 in the environment (every step), or LOOM_PROFILE=decode (the steps in which every
// sequence adds one token: what decoding costs, without the prompts' steps mixed in).
bool profiling_requested();
bool profiling_decode_steps_only();

// "<clock> time by phase over N steps (T ms):" then one line a phase, largest first.
std::string phase_table(const PhaseSeconds& seconds, std::uint64_t steps, std::string_view clock);

// The group a phase belongs to, from its name: "attention", "GEMMs" (projections and the lm
// head, with whatever is fused into them), "sampling" (argmax, sampling and their copies), or
// "norms and activations" (embedding, norms, RoPE, SiLU, residual adds: the rest).
std::string_view phase_category(std::string_view phase);

// The CPU runner's phases: each mark() gives the time since the previous mark (or start()) to
// the phase it names. Does nothing unless enabled.
class PhaseClock {
 public:
  explicit PhaseClock(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  void set_enabled(bool on) { enabled_ = on; }
  void start() {
    if (enabled_) last_ = std::chrono::steady_clock::now();
  }
  void mark(const char* phase) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    seconds_[phase] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  void end_step() { steps_ += enabled_; }
  const PhaseSeconds& seconds() const { return seconds_; }
  std::uint64_t steps() const { return steps_; }
  void reset() {
    seconds_.clear();
    steps_ = 0;
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point last_{};
  PhaseSeconds seconds_;
  std::uint64_t steps_ = 0;
};

}  // namespace loom
