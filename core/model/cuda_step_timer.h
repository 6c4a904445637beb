// Device time of a runner's forward passes, measured with events around each step, and with
// LOOM_PROFILE=1 (steps run eagerly then) around each phase of the forward too.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/model/phase_times.h"

namespace loom {

class CudaStepTimer {
 public:
  explicit CudaStepTimer(bool profile);
  ~CudaStepTimer();
  CudaStepTimer(const CudaStepTimer&) = delete;
  CudaStepTimer& operator=(const CudaStepTimer&) = delete;

  bool profiling() const { return profile_; }
  void set_profiling(bool on) { profile_ = on; }
  void start(cudaStream_t stream);               // before the step's first kernel
  void mark(const char* phase, cudaStream_t stream);  // end of a phase (profiling only)
  void stop(cudaStream_t stream);                // after the step's last kernel
  void collect();  // once the step has finished on the device: adds its times

  double device_seconds() const { return device_ms_ / 1e3; }
  std::string report() const;  // per-phase table; "" without profiling
  const PhaseSeconds& phase_seconds() const { return phase_seconds_; }
  void reset();

 private:
  bool profile_;
  cudaEvent_t start_ = nullptr, end_ = nullptr;
  bool pending_ = false;
  double device_ms_ = 0;
  std::vector<cudaEvent_t> phase_events_;
  std::vector<const char*> phase_names_;
  std::size_t phase_count_ = 0;
  PhaseSeconds phase_seconds_;
  std::uint64_t profiled_steps_ = 0;
};

}  // namespace loom
