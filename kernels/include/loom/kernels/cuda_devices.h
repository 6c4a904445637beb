// What CUDA devices this process can see. Plain C++ header: the implementation is compiled by
// nvcc when the CUDA backend is built, and by the C++ compiler as a "no CUDA" stub otherwise.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace loom::kernels {

struct CudaDevice {
  int index = 0;
  std::string name;
  std::size_t total_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
};

// True when this build contains the CUDA backend.
bool cuda_compiled() noexcept;

// Devices visible now; empty without a driver or GPU. Never throws. When empty, `why` (if given)
// receives the reason in words (e.g. "no CUDA driver", "built without CUDA").
std::vector<CudaDevice> cuda_devices(std::string* why = nullptr) noexcept;

}  // namespace loom::kernels
