// Small-batch linear layer (see gemv.h).
#include "common.cuh"
#include "loom/kernels/cuda/gemv.h"

namespace loom::kernels::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

// A 16-byte weight load that bypasses L1: the weights are read once, and L1 keeps nothing but
// the block's copy of x in shared memory that way.
__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

template <typename T, int R>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_kernel(const T* x, int in, const T* w, int out, void* y,
                                                                   bool y_f32) {
  extern __shared__ uint4 s_x[];  // the R input rows, 8 elements per entry
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int chunks = in / 8;
  for (int c = threadIdx.x; c < R * chunks; c += blockDim.x) s_x[c] = reinterpret_cast<const uint4*>(x)[c];
  __syncthreads();
  for (int o = blockIdx.x * kWarpsPerBlock + warp; o < out; o += gridDim.x * kWarpsPerBlock) {
    const T* row = w + static_cast<std::size_t>(o) * in;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
    // kBatch independent 16-byte weight loads per lane are issued before any is used, so the
    // memory system always has enough requests in flight to stream at full bandwidth.
    constexpr int kBatch = 8;
    for (int c0 = lane; c0 < chunks; c0 += 32 * kBatch) {
      uint4 raw[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int c = c0 + b * 32;
        raw[b] = c < chunks ? load_streaming(reinterpret_cast<const uint4*>(row) + c) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int c = c0 + b * 32;
        if (c >= chunks) break;
        float wv[8];
        detail::unpack8<T>(raw[b], wv);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float xv[8];
          detail::unpack8<T>(s_x[r * chunks + c], xv);
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[r] += wv[i] * xv[i];
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = detail::warp_sum(acc[r]);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const std::size_t at = static_cast<std::size_t>(r) * out + o;
        if (y_f32)
          static_cast<float*>(y)[at] = acc[r];
        else
          static_cast<T*>(y)[at] = detail::from_float<T>(acc[r]);
      }
    }
  }
}

template <typename T, int R>
cudaError_t launch_rows(const void* x, int in, const void* w, int out, void* y, bool y_f32, cudaStream_t stream) {
  const int blocks = (out + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const std::size_t smem = static_cast<std::size_t>(R) * in * sizeof(T);
  gemv_kernel<T, R><<<blocks, kWarpsPerBlock * 32, smem, stream>>>(static_cast<const T*>(x), in, static_cast<const T*>(w),
                                                                out, y, y_f32);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_gemv(const void* x, int rows, int in, const void* w, int out, void* y, bool y_f32,
                        cudaStream_t stream) {
  static_assert(kGemvMaxRows == 1, "instantiate gemv_kernel for every row count gemv_supports() accepts");
  (void)rows;
  return launch_rows<T, 1>(x, in, w, out, y, y_f32, stream);
}

}  // namespace

cudaError_t gemv(const void* x, int rows, int in, const void* w, int out, void* y, bool y_f32, DType dtype,
                 cudaStream_t stream) {
  if (!gemv_supports(rows, in)) return cudaErrorInvalidValue;
  return LOOM_DISPATCH_DTYPE(dtype, launch_gemv)(x, rows, in, w, out, y, y_f32, stream);
}

}  // namespace loom::kernels::cuda
