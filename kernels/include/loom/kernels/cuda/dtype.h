// The element types the CUDA kernels compute in: 16-bit floats with fp32 accumulation.
// Plain C++ so that host code compiled by g++ can name them (nvcc compiles only kernels/cuda).
#pragma once

#include <cstddef>

namespace loom::kernels::cuda {

enum class DType { f16, bf16 };

inline constexpr std::size_t kElementSize = 2;  // both types are 16 bits

inline const char* dtype_name(DType dtype) { return dtype == DType::f16 ? "fp16" : "bf16"; }

}  // namespace loom::kernels::cuda
