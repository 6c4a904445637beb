// Device enumeration for a build without the CUDA backend: there are never any devices.
#include "loom/kernels/cuda_devices.h"

namespace loom::kernels {

bool cuda_compiled() noexcept { return false; }

std::vector<CudaDevice> cuda_devices(std::string* why) noexcept {
  if (why) *why = "this build has no CUDA backend (configured with LOOM_CUDA=OFF or without nvcc)";
  return {};
}

}  // namespace loom::kernels
