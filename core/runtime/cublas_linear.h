// Linear layers on the GPU: y[T, out] = x[T, in] W^T with W [out, in] row-major (the Hugging
// Face layout), 16-bit inputs, fp32 accumulation, 16-bit or fp32 output. cuBLAS runs them, except
// for a single row (batch-1 decode), where Loom's GEMV kernel streams the weights faster.
#pragma once

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

typedef struct cublasContext* cublasHandle_t;

namespace loom::runtime {

class CublasLinear {
 public:
  // Binds a cuBLAS handle to `stream` with a fixed workspace (so CUDA graphs can capture it).
  // own_gemv: single rows go to Loom's GEMV (default, unless LOOM_GEMV=cublas, the benchmark
  // peer) or to cuBLAS.
  explicit CublasLinear(cudaStream_t stream, bool own_gemv = own_gemv_by_default());
  ~CublasLinear();
  CublasLinear(const CublasLinear&) = delete;
  CublasLinear& operator=(const CublasLinear&) = delete;

  // y = x W^T; y is `dtype` or, when y_f32, fp32 (for logits). Throws DeviceError naming the
  // shape on failure.
  void run(const void* x, int rows, int in, const void* w, int out, void* y, kernels::cuda::DType dtype,
           bool y_f32 = false);

  static bool own_gemv_by_default();
  bool own_gemv() const { return own_gemv_; }

 private:
  bool own_gemv_ = true;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace loom::runtime
