#include "core/runtime/cublas_linear.h"

#include <cstdlib>
#include <string>

#include <cublas_v2.h>

#include "loom/cuda_check.h"
#include "loom/error.h"
#include "loom/kernels/cuda/gemv.h"

namespace loom::runtime {

namespace {

constexpr std::size_t kWorkspaceBytes = 32u << 20;  // cuBLAS's recommendation for Hopper

void check(cublasStatus_t status, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw DeviceError(what + " failed: " + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}

}  // namespace

CublasLinear::CublasLinear(cudaStream_t stream, bool own_gemv) : own_gemv_(own_gemv), stream_(stream) {
  check(cublasCreate(&handle_), "cublasCreate");
  check(cublasSetStream(handle_, stream), "cublasSetStream");
  LOOM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
  check(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes), "cublasSetWorkspace");
}

bool CublasLinear::own_gemv_by_default() {
  const char* env = std::getenv("LOOM_GEMV");
  return !(env && std::string(env) == "cublas");
}

CublasLinear::~CublasLinear() {
  if (handle_) cublasDestroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

void CublasLinear::run(const void* x, int rows, int in, const void* w, int out, void* y, kernels::cuda::DType dtype,
                       bool y_f32) {
  if (rows == 0) return;
  if (own_gemv_ && kernels::cuda::gemv_supports(rows, in)) {  // decode: stream the weights once, at full bandwidth
    LOOM_CUDA_CHECK(kernels::cuda::gemv(x, rows, in, w, out, y, y_f32, dtype, stream_));
    return;
  }
  // Column-major view: Y^T [out, rows] = W [in, out]^T . X^T [in, rows].
  const cudaDataType_t ab = dtype == kernels::cuda::DType::f16 ? CUDA_R_16F : CUDA_R_16BF;
  const cudaDataType_t c = y_f32 ? CUDA_R_32F : ab;
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &alpha, w, ab, in, x, ab, in, &beta, y, c, out,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx (linear " + std::to_string(rows) + "x" + std::to_string(in) + " -> " + std::to_string(out) + ")");
}

}  // namespace loom::runtime
