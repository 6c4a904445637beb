// The element types the CUDA kernels compute in: fp16 and bf16 of the SDK's one DType
// (loom/dtype.h), with fp32 accumulation. A kernel handed another type returns
// cudaErrorInvalidValue. Plain C++ so that host code compiled by g++ can name them.
#pragma once

#include <cstddef>

#include "loom/dtype.h"

namespace loom::kernels::cuda {

using sdk::DType;

inline constexpr std::size_t kElementSize = 2;  // both types are 16 bits

}  // namespace loom::kernels::cuda
