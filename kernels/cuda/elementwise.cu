// Row-wise kernels of the Llama forward pass (see elementwise.h). One block per row where a row
// needs a reduction; grid-stride loops elsewhere. Vector (16-byte) access when a row allows it.
#include <cfloat>

#include "common.cuh"
#include "loom/kernels/cuda/elementwise.h"

namespace loom::kernels::cuda {

using detail::from_float;
using detail::to_float;

namespace {

constexpr int kThreads = 256;

int blocks_for(std::size_t n) {
  return static_cast<int>(std::min<std::size_t>((n + kThreads - 1) / kThreads, 65535u * 8u));
}

template <typename T>
__global__ void convert_kernel(const float* src, T* dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = from_float<T>(src[i]);
}

template <typename T>
cudaError_t launch_convert(const float* src, void* dst, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  convert_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(src, static_cast<T*>(dst), n);
  return cudaGetLastError();
}

template <typename T>
__global__ void embedding_kernel(const T* table, int vocab, int hidden, const std::int32_t* ids, float* out,
                                 std::int32_t* bad_id) {
  // The first kernel of a step (launched after the inputs' copy, not chained): the next one may
  // start loading its weights now, and waits for this grid before it reads the rows.
  detail::allow_dependent_launch();
  const int t = blockIdx.x;
  const std::int32_t id = ids[t];
  float* row = out + static_cast<std::size_t>(t) * hidden;
  if (id < 0 || id >= vocab) {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = 0.0f;
    if (threadIdx.x == 0 && bad_id) atomicExch(bad_id, id);
    return;
  }
  const T* src = table + static_cast<std::size_t>(id) * hidden;
  if (hidden % 8 == 0) {  // 16-byte loads, all of a thread's issued at once (a row is a few per thread)
#pragma unroll 4
    for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) {
      float v[8];
      detail::load8(src + 8 * c, v);
      reinterpret_cast<float4*>(row)[2 * c] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(row)[2 * c + 1] = make_float4(v[4], v[5], v[6], v[7]);
    }
    return;
  }
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = to_float(src[i]);
}

template <typename T>
cudaError_t launch_embedding(const void* table, int vocab, int hidden, const std::int32_t* ids, int n, float* out,
                             std::int32_t* bad_id, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  embedding_kernel<T><<<n, kThreads, 0, stream>>>(static_cast<const T*>(table), vocab, hidden, ids, out, bad_id);
  return cudaGetLastError();
}

// hidden += delta (when given), then the norm. H is the residual stream's type: fp32 in the
// model, T for plain rmsnorm of a 16-bit tensor.
template <typename T, typename H>
__global__ void add_rmsnorm_kernel(H* hidden, const T* delta, const T* weight, int cols, float eps, T* out) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  __shared__ float scratch[32];
  const std::size_t base = static_cast<std::size_t>(blockIdx.x) * cols;
  float sum_sq = 0.0f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    float x = to_float(hidden[base + i]);
    if (delta) {
      x += to_float(delta[base + i]);
      hidden[base + i] = static_cast<H>(x);
    }
    sum_sq += x * x;
  }
  const float total = detail::block_sum(sum_sq, scratch);
  const float inv = rsqrtf(total / static_cast<float>(cols) + eps);
  for (int i = threadIdx.x; i < cols; i += blockDim.x)
    out[base + i] = from_float<T>(to_float(hidden[base + i]) * inv * to_float(weight[i]));
}

// The same in one pass: each thread keeps its (at most kPer) elements in registers between the
// sum and the scaling, so a decode step's single row costs one read and one write.
constexpr int kPer = 8;

template <typename T>
__global__ void add_rmsnorm_registers_kernel(float* hidden, const T* delta, const T* weight, int cols, float eps,
                                             T* out) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  __shared__ float scratch[32];
  const std::size_t base = static_cast<std::size_t>(blockIdx.x) * cols;
  float x[kPer];
  float sum_sq = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    x[j] = 0.0f;
    if (i < cols) {
      x[j] = hidden[base + i];
      if (delta) {
        x[j] += to_float(delta[base + i]);
        hidden[base + i] = x[j];
      }
      sum_sq += x[j] * x[j];
    }
  }
  const float inv = rsqrtf(detail::block_sum(sum_sq, scratch) / static_cast<float>(cols) + eps);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * blockDim.x;
    if (i < cols) out[base + i] = from_float<T>(x[j] * inv * to_float(weight[i]));
  }
}

template <typename T>
cudaError_t launch_add_rmsnorm(float* hidden, const void* delta, const void* weight, int rows, int cols, float eps,
                               void* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (cols <= 1024 * kPer) {
    const int per_thread = (cols + kPer - 1) / kPer;  // threads needed, rounded up to whole warps
    const int threads = std::min(1024, (per_thread + 31) / 32 * 32);
    return detail::launch_chained(add_rmsnorm_registers_kernel<T>, dim3(rows), dim3(threads), 0, stream, hidden,
                                  static_cast<const T*>(delta), static_cast<const T*>(weight), cols, eps,
                                  static_cast<T*>(out));
  }
  const int threads = cols >= 1024 ? 512 : (cols >= 256 ? 256 : 64);
  return detail::launch_chained(add_rmsnorm_kernel<T, float>, dim3(rows), dim3(threads), 0, stream, hidden,
                                static_cast<const T*>(delta), static_cast<const T*>(weight), cols, eps,
                                static_cast<T*>(out));
}

template <typename T>
cudaError_t launch_rmsnorm(const void* x, const void* weight, int rows, int cols, float eps, void* out,
                           cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const int threads = cols >= 1024 ? 512 : (cols >= 256 ? 256 : 64);
  add_rmsnorm_kernel<T, T><<<rows, threads, 0, stream>>>(const_cast<T*>(static_cast<const T*>(x)), nullptr,
                                                         static_cast<const T*>(weight), cols, eps, static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
__global__ void add_bias_kernel(T* x, const T* bias, std::size_t n, int cols) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(to_float(x[i]) + to_float(bias[i % cols]));
}

template <typename T>
cudaError_t launch_add_bias(void* x, const void* bias, int rows, int cols, cudaStream_t stream) {
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  if (n == 0) return cudaSuccess;
  add_bias_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<T*>(x), static_cast<const T*>(bias), n, cols);
  return cudaGetLastError();
}

// Eight outputs per thread with 16-byte loads when inter is a multiple of 8, else one.
template <typename T, int kVec>
__global__ void silu_and_mul_kernel(const T* gate_up, int rows, int inter, T* out) {
  const std::size_t per_row = static_cast<std::size_t>(inter) / kVec;
  const std::size_t n = per_row * rows;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t row = i / per_row, col = (i % per_row) * kVec;
    const T* g = gate_up + row * 2 * inter + col;
    const T* u = g + inter;
    T* o = out + row * inter + col;
    if constexpr (kVec == 8) {
      float gv[8], uv[8], ov[8];
      detail::load8(g, gv);
      detail::load8(u, uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) ov[j] = gv[j] / (1.0f + __expf(-gv[j])) * uv[j];
      detail::store8(o, ov);
    } else {
      const float gv = to_float(g[0]);
      o[0] = from_float<T>(gv / (1.0f + __expf(-gv)) * to_float(u[0]));
    }
  }
}

template <typename T>
cudaError_t launch_silu_and_mul(const void* gate_up, int rows, int inter, void* out, cudaStream_t stream) {
  const std::size_t n = static_cast<std::size_t>(rows) * inter;
  if (n == 0) return cudaSuccess;
  if (inter % 8 == 0)
    silu_and_mul_kernel<T, 8><<<blocks_for(n / 8), kThreads, 0, stream>>>(static_cast<const T*>(gate_up), rows, inter,
                                                                          static_cast<T*>(out));
  else
    silu_and_mul_kernel<T, 1><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(gate_up), rows, inter,
                                                                     static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
__global__ void gather_rows_kernel(const T* src, const std::int32_t* rows, int cols, T* dst) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  const T* from = src + static_cast<std::size_t>(rows[blockIdx.x]) * cols;
  T* to = dst + static_cast<std::size_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) to[i] = from[i];
}

template <typename T>
cudaError_t launch_gather_rows(const void* src, const std::int32_t* rows, int num_rows, int cols, void* dst,
                               cudaStream_t stream) {
  if (num_rows == 0) return cudaSuccess;
  return detail::launch_chained(gather_rows_kernel<T>, dim3(num_rows), dim3(kThreads), 0, stream,
                                static_cast<const T*>(src), rows, cols, static_cast<T*>(dst));
}

// Larger value wins; on a tie the lower index. NaN never wins (its comparisons are false).
__device__ __forceinline__ void better(float& value, int& index, float other_value, int other_index) {
  if (other_value > value || (other_value == value && other_index < index)) {
    value = other_value;
    index = other_index;
  }
}

__global__ void argmax_kernel(const float* logits, int vocab, std::int32_t* out) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  __shared__ float values[32];
  __shared__ int indices[32];
  const float* row = logits + static_cast<std::size_t>(blockIdx.x) * vocab;
  float best = -INFINITY;
  int best_index = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) better(best, best_index, row[i], i);
  for (int offset = 16; offset > 0; offset >>= 1)
    better(best, best_index, __shfl_xor_sync(0xffffffffu, best, offset), __shfl_xor_sync(0xffffffffu, best_index, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    values[warp] = best;
    indices[warp] = best_index;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    best = lane < warps ? values[lane] : -INFINITY;
    best_index = lane < warps ? indices[lane] : 0x7fffffff;
    for (int offset = 16; offset > 0; offset >>= 1)
      better(best, best_index, __shfl_xor_sync(0xffffffffu, best, offset),
             __shfl_xor_sync(0xffffffffu, best_index, offset));
    // -inf everywhere (or NaN everywhere): the CPU answer is 0.
    if (lane == 0) out[blockIdx.x] = best > -INFINITY ? best_index : 0;
  }
}

}  // namespace

cudaError_t convert_from_f32(const float* src, void* dst, std::size_t n, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_convert, src, dst, n, stream);
}

cudaError_t embedding(const void* table, int vocab, int hidden, const std::int32_t* ids, int num_tokens, float* out,
                      std::int32_t* bad_id, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_embedding, table, vocab, hidden, ids, num_tokens, out, bad_id, stream);
}

cudaError_t rmsnorm(const void* x, const void* weight, int rows, int cols, float eps, void* out, DType dtype,
                    cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_rmsnorm, x, weight, rows, cols, eps, out, stream);
}

cudaError_t add_rmsnorm(float* hidden, const void* delta, const void* weight, int rows, int cols, float eps, void* out,
                        DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_add_rmsnorm, hidden, delta, weight, rows, cols, eps, out, stream);
}

cudaError_t add_bias(void* x, const void* bias, int rows, int cols, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_add_bias, x, bias, rows, cols, stream);
}

cudaError_t silu_and_mul(const void* gate_up, int rows, int inter, void* out, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_silu_and_mul, gate_up, rows, inter, out, stream);
}

cudaError_t gather_rows(const void* src, const std::int32_t* rows, int num_rows, int cols, void* dst, DType dtype,
                        cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_gather_rows, src, rows, num_rows, cols, dst, stream);
}

cudaError_t argmax_rows(const float* logits, int rows, int vocab, std::int32_t* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return detail::launch_chained(argmax_kernel, dim3(rows), dim3(1024), 0, stream, logits, vocab, out);
}

}  // namespace loom::kernels::cuda
