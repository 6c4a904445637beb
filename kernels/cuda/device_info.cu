// Device enumeration through the CUDA runtime; a missing driver or GPU is an empty list.
#include <cuda_runtime.h>

#include "loom/kernels/cuda_devices.h"

namespace loom::kernels {

bool cuda_compiled() noexcept { return true; }

std::vector<CudaDevice> cuda_devices(std::string* why) noexcept {
  std::vector<CudaDevice> devices;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why) {
      bool no_driver = status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice;
      *why = std::string(no_driver ? "no CUDA driver or GPU on this machine" : "the CUDA runtime failed") +
             " (" + cudaGetErrorString(status) + ")";
    }
    cudaGetLastError();  // clear the sticky error so later calls are not poisoned
    return devices;
  }
  if (count == 0 && why) *why = "no CUDA device visible";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back({i, prop.name, prop.totalGlobalMem, prop.major, prop.minor});
  }
  return devices;
}

}  // namespace loom::kernels
