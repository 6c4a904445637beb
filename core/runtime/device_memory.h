// Owning handles for CUDA resources: device buffers, pinned host buffers (the SDK's, so GPU
// plugins use the same), streams, and the device's memory figures. Every allocation failure is a loom::DeviceError that says what was
// being allocated, how much, and how much the device has free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime_api.h>

#include "loom/cuda_buffer.h"

namespace loom::runtime {

struct DeviceMemoryInfo {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

// Makes `index` the calling thread's current device; throws DeviceError naming the devices that
// exist when it does not.
void select_device(int index);
DeviceMemoryInfo device_memory_info();
int multiprocessor_count();
std::string device_name();

// The SDK's owning buffers (loom/cuda_buffer.h), shared with GPU plugins.
using DeviceBuffer = sdk::DeviceBuffer;
using PinnedBuffer = sdk::PinnedBuffer;
using sdk::format_gib;

class CudaStream {
 public:
  CudaStream();
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};


}  // namespace loom::runtime
