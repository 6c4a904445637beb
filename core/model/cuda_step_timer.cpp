#include "core/model/cuda_step_timer.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "loom/cuda_check.h"

namespace loom {

CudaStepTimer::CudaStepTimer(bool profile) : profile_(profile) {
  LOOM_CUDA_CHECK(cudaEventCreate(&start_));
  LOOM_CUDA_CHECK(cudaEventCreate(&end_));
}

CudaStepTimer::~CudaStepTimer() {
  for (cudaEvent_t e : phase_events_) cudaEventDestroy(e);
  if (start_) cudaEventDestroy(start_);
  if (end_) cudaEventDestroy(end_);
}

void CudaStepTimer::start(cudaStream_t stream) {
  phase_count_ = 0;
  LOOM_CUDA_CHECK(cudaEventRecord(start_, stream));
  pending_ = true;
}

void CudaStepTimer::mark(const char* phase, cudaStream_t stream) {
  if (!profile_) return;
  if (phase_count_ == phase_events_.size()) {
    cudaEvent_t e = nullptr;
    LOOM_CUDA_CHECK(cudaEventCreate(&e));
    phase_events_.push_back(e);
    phase_names_.push_back(phase);
  }
  phase_names_[phase_count_] = phase;
  LOOM_CUDA_CHECK(cudaEventRecord(phase_events_[phase_count_++], stream));
}

void CudaStepTimer::stop(cudaStream_t stream) { LOOM_CUDA_CHECK(cudaEventRecord(end_, stream)); }

void CudaStepTimer::collect() {
  if (!pending_) return;
  pending_ = false;
  float ms = 0;
  LOOM_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, end_));
  device_ms_ += ms;
  if (!profile_ || phase_count_ == 0) return;
  float previous = 0;
  for (std::size_t i = 0; i < phase_count_; ++i) {
    float at = 0;
    LOOM_CUDA_CHECK(cudaEventElapsedTime(&at, start_, phase_events_[i]));
    phase_seconds_[phase_names_[i]] += (at - previous) / 1e3;  // the phase named at its end
    previous = at;
  }
  ++profiled_steps_;
}

void CudaStepTimer::reset() {
  device_ms_ = 0;
  phase_seconds_.clear();
  profiled_steps_ = 0;
}

std::string CudaStepTimer::report() const { return phase_table(phase_seconds_, profiled_steps_, "GPU"); }

}  // namespace loom
