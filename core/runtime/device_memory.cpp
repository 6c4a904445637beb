#include "core/runtime/device_memory.h"

#include "loom/cuda_check.h"
#include "loom/error.h"

namespace loom::runtime {

void select_device(int index) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw DeviceError("no CUDA device is visible on this machine (engine.device asks for cuda:" +
                      std::to_string(index) + "); use device = \"cpu\"");
  }
  if (index < 0 || index >= count)
    throw DeviceError("engine.device asks for cuda:" + std::to_string(index) + " but this machine has " +
                      std::to_string(count) + " CUDA device(s): cuda:0 .. cuda:" + std::to_string(count - 1));
  LOOM_CUDA_CHECK(cudaSetDevice(index));
}

DeviceMemoryInfo device_memory_info() {
  std::size_t free_bytes = 0, total_bytes = 0;
  LOOM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return {free_bytes, total_bytes};
}

int multiprocessor_count() {
  int device = 0, count = 0;
  LOOM_CUDA_CHECK(cudaGetDevice(&device));
  LOOM_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

std::string device_name() {
  int device = 0;
  LOOM_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  LOOM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

CudaStream::CudaStream() { LOOM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaStream::synchronize() const { LOOM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace loom::runtime
