// Shared device helpers for the CUDA kernels: 16-bit <-> fp32 conversion of single values and of
// 8-element (16-byte) vectors, and warp reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda::detail {

template <typename T> __device__ __forceinline__ float to_float(T x);
template <> __device__ __forceinline__ float to_float<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_float<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Eight consecutive elements (16 bytes, which must be 16-byte aligned) to and from fp32.
template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float out[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) out[i] = to_float(e[i]);
}

template <typename T>
__device__ __forceinline__ void load8(const T* p, float out[8]) {
  unpack8<T>(*reinterpret_cast<const uint4*>(p), out);
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float in[8]) {
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = from_float<T>(in[i]);
  *reinterpret_cast<uint4*>(p) = raw;
}

// Programmatic dependent launch (PDL; sm_90 and up). The kernels of a forward pass are launched
// by launch_chained(): with PDL, a kernel's CTAs may be scheduled while its predecessor is still
// running, which hides most of the launch latency between the ~160 kernels of a decode step.
// Every chained kernel therefore calls wait_for_prerequisite_grid() before it reads or writes
// anything another kernel touches (a GEMV issues its first weight loads before it: weights are
// never written), and allow_dependent_launch() once it has waited. Without the launch attribute
// both are no-ops (the stream has already serialised the kernels).
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::);
#endif
}

__device__ __forceinline__ void wait_for_prerequisite_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Both, at the top of a chained kernel that has nothing to do before its inputs are ready.
__device__ __forceinline__ void wait_then_allow_dependents() {
  wait_for_prerequisite_grid();
  allow_dependent_launch();
}

// On for devices of compute capability 9.0 and up unless LOOM_PDL=0 (to compare, or to rule it
// out when chasing a bug).
inline bool chained_launch_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("LOOM_PDL");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    int device = 0, major = 0;
    return cudaGetDevice(&device) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 9;
  }();
  return on;
}

template <typename... Params, typename... Args>
cudaError_t launch_chained(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                           Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute early_start;
  early_start.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  early_start.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &early_start;
  config.numAttrs = chained_launch_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// Sum over a block of up to 1024 threads; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  x = warp_sum(x);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  x = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(x);
}

}  // namespace loom::kernels::cuda::detail

// Calls `launch<T>(args...)` for the runtime dtype; a type the kernels do not compute in (fp32,
// integers) is cudaErrorInvalidValue, never a silent reinterpretation of the buffers.
#define LOOM_DISPATCH_DTYPE(dtype, launch, ...)                                            \
  ((dtype) == ::loom::sdk::DType::f16    ? launch<__half>(__VA_ARGS__)                     \
   : (dtype) == ::loom::sdk::DType::bf16 ? launch<__nv_bfloat16>(__VA_ARGS__)              \
                                         : cudaErrorInvalidValue)
