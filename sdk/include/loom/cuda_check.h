// LOOM_CUDA_CHECK(call): runs a CUDA runtime call (or a kernel wrapper that returns its launch
// status) and throws loom::DeviceError naming the call, its file and line, and CUDA's message.
// Header-only and included only by code built with CUDA (core/runtime, CUDA-aware plugins).
#pragma once

#include <string>

#include <cuda_runtime_api.h>

#include "loom/error.h"

namespace loom::sdk::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw DeviceError(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                    cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

}  // namespace loom::sdk::detail

#define LOOM_CUDA_CHECK(call)                                                      \
  do {                                                                             \
    const cudaError_t loom_cuda_status_ = (call);                                  \
    if (loom_cuda_status_ != cudaSuccess)                                          \
      ::loom::sdk::detail::throw_cuda_error(loom_cuda_status_, #call, __FILE__, __LINE__); \
  } while (false)
