// Owning CUDA memory for the engine and for GPU plugins: DeviceBuffer (cudaMalloc) and
// PinnedBuffer (cudaMallocHost, so host <-> device copies are asynchronous and full speed).
// Each frees its memory when destroyed, so an object holding several is safe when a later
// allocation throws; a failed allocation is a loom::DeviceError saying what was being allocated,
// how much, and (device memory) how much the device has free. Header-only; include it only from
// code built with CUDA, like loom/cuda_check.h.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

#include <cuda_runtime_api.h>

#include "loom/cuda_check.h"
#include "loom/error.h"

namespace loom::sdk {

// "1.50 GiB", for messages.
inline std::string format_gib(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

namespace detail {

// The shared part of both buffers: ownership of one pointer, freed by `Free`.
template <cudaError_t (*Free)(void*)>
class CudaAllocation {
 public:
  CudaAllocation() = default;
  ~CudaAllocation() {
    if (data_) Free(data_);
  }
  CudaAllocation(CudaAllocation&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  CudaAllocation& operator=(CudaAllocation&& other) noexcept {
    if (this != &other) {
      if (data_) Free(data_);
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  CudaAllocation(const CudaAllocation&) = delete;
  CudaAllocation& operator=(const CudaAllocation&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  std::size_t bytes() const { return bytes_; }

 protected:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace detail

class DeviceBuffer : public detail::CudaAllocation<cudaFree> {
 public:
  DeviceBuffer() = default;
  // `what` names the buffer in the error when the device has too little memory.
  DeviceBuffer(std::size_t bytes, const std::string& what) {
    if (bytes == 0) return;
    const cudaError_t status = cudaMalloc(&data_, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      std::size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw DeviceError("out of GPU memory allocating " + format_gib(bytes) + " for " + what + ": " +
                        format_gib(free_bytes) + " free of " + format_gib(total_bytes) +
                        " (lower engine.gpu_memory_utilization, kv.num_blocks or engine.max_num_batched_tokens, "
                        "or use a smaller model)");
    }
    LOOM_CUDA_CHECK(status);
    bytes_ = bytes;
  }
};

class PinnedBuffer : public detail::CudaAllocation<cudaFreeHost> {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(std::size_t bytes, const std::string& what) {
    if (bytes == 0) return;
    const cudaError_t status = cudaMallocHost(&data_, bytes);
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw DeviceError("could not allocate " + format_gib(bytes) + " of pinned host memory for " + what + ": " +
                        cudaGetErrorString(status));
    }
    bytes_ = bytes;
  }
};

}  // namespace loom::sdk
