// y[T, out] = x[T, in] W^T for a handful of rows (decode): W [out, in] row-major is streamed once
// with 16-byte loads, one warp per output row, fp32 accumulation. Memory-bound by design: at
// batch sizes this small, a GEMM library's tiles leave bandwidth unused.
#pragma once

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

inline constexpr int kGemvMaxRows = 8;

// Whether gemv() takes this shape: 1 <= rows <= kGemvMaxRows and in a multiple of 8.
inline bool gemv_supports(int rows, int in) { return rows >= 1 && rows <= kGemvMaxRows && in % 8 == 0; }

// y is `dtype`, or fp32 when y_f32. Pointers 16-byte aligned.
cudaError_t gemv(const void* x, int rows, int in, const void* w, int out, void* y, bool y_f32, DType dtype,
                 cudaStream_t stream);

}  // namespace loom::kernels::cuda
