// QKV split + (QK-norm) + RoPE (see rope.h). The vectorised kernel gives each thread 8 elements
// of a head (16-byte loads and stores; for rotate-half pairing, 8 from each half), a power of two
// of threads per head that share the QK-norm's sum of squares by shuffles. Other head sizes take
// the scalar kernel: one warp per head of one token.
#include "common.cuh"
#include "loom/kernels/cuda/rope.h"

namespace loom::kernels::cuda {

using detail::from_float;
using detail::to_float;

namespace {

template <typename T>
__device__ void rotate_head(const T* src, T* dst, int d, const float* cos, const float* sin, bool interleaved,
                            const T* norm_weight, float eps) {
  const int lane = threadIdx.x % 32;
  float inv = 1.0f;
  if (norm_weight) {
    float sum_sq = 0.0f;
    for (int i = lane; i < d; i += 32) {
      const float x = to_float(src[i]);
      sum_sq += x * x;
    }
    inv = rsqrtf(detail::warp_sum(sum_sq) / static_cast<float>(d) + eps);
  }
  // The CPU rounds the normed head to fp32 before rotating; here it stays fp32 as well.
  auto value = [&](int i) {
    const float x = to_float(src[i]);
    return norm_weight ? x * inv * to_float(norm_weight[i]) : x;
  };
  const int half = d / 2;
  for (int i = lane; i < half; i += 32) {
    const int a = interleaved ? 2 * i : i;
    const int b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = value(a), x1 = value(b);
    dst[a] = from_float<T>(x0 * cos[i] - x1 * sin[i]);
    dst[b] = from_float<T>(x0 * sin[i] + x1 * cos[i]);
  }
}

template <typename T>
__global__ void rope_split_kernel(RopeSplitArgs args) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  const int t = blockIdx.x;
  const int d = args.head_dim, heads = args.num_heads, kv_heads = args.num_kv_heads;
  const T* row = static_cast<const T*>(args.qkv) + static_cast<std::size_t>(t) * (heads + 2 * kv_heads) * d;
  int pos = args.positions[t];
  pos = pos < 0 ? 0 : (pos >= args.table_positions ? args.table_positions - 1 : pos);
  const float* cos = args.cos_sin + static_cast<std::size_t>(pos) * d;
  const float* sin = cos + d / 2;
  const int warps = blockDim.x / 32;
  const int h = blockIdx.y * warps + threadIdx.x / 32;  // one head per warp
  if (h < heads + 2 * kv_heads) {
    const T* src = row + static_cast<std::size_t>(h) * d;
    if (h < heads) {
      T* dst = static_cast<T*>(args.q) + (static_cast<std::size_t>(t) * heads + h) * d;
      rotate_head(src, dst, d, cos, sin, args.interleaved, static_cast<const T*>(args.q_norm), args.norm_eps);
    } else if (h < heads + kv_heads) {
      T* dst = static_cast<T*>(args.k) + (static_cast<std::size_t>(t) * kv_heads + (h - heads)) * d;
      rotate_head(src, dst, d, cos, sin, args.interleaved, static_cast<const T*>(args.k_norm), args.norm_eps);
    } else {
      T* dst = static_cast<T*>(args.v) + (static_cast<std::size_t>(t) * kv_heads + (h - heads - kv_heads)) * d;
      for (int i = threadIdx.x % 32; i < d; i += 32) dst[i] = src[i];
    }
  }
}

template <typename T>
__global__ void rope_split_vector_kernel(RopeSplitArgs args, int threads_per_head) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  const int t = blockIdx.x;
  const int d = args.head_dim, half = d / 2, heads = args.num_heads, kv_heads = args.num_kv_heads;
  const int idx = blockIdx.y * blockDim.x + threadIdx.x;
  const int h = idx / threads_per_head, c = idx % threads_per_head;
  if (h >= heads + 2 * kv_heads) return;  // a head's threads leave together
  const T* row = static_cast<const T*>(args.qkv) + static_cast<std::size_t>(t) * (heads + 2 * kv_heads) * d;
  const T* src = row + static_cast<std::size_t>(h) * d;
  const int ia = c * 8, ib = half + c * 8;  // ib: the partner chunk of rotate-half pairing
  if (h >= heads + kv_heads) {
    T* dst = static_cast<T*>(args.v) + (static_cast<std::size_t>(t) * kv_heads + (h - heads - kv_heads)) * d;
    *reinterpret_cast<uint4*>(dst + ia) = *reinterpret_cast<const uint4*>(src + ia);
    if (!args.interleaved) *reinterpret_cast<uint4*>(dst + ib) = *reinterpret_cast<const uint4*>(src + ib);
    return;
  }
  int pos = args.positions[t];
  pos = pos < 0 ? 0 : (pos >= args.table_positions ? args.table_positions - 1 : pos);
  const float* cos = args.cos_sin + static_cast<std::size_t>(pos) * d;
  const float* sin = cos + half;
  const bool is_q = h < heads;
  T* dst = is_q ? static_cast<T*>(args.q) + (static_cast<std::size_t>(t) * heads + h) * d
                : static_cast<T*>(args.k) + (static_cast<std::size_t>(t) * kv_heads + (h - heads)) * d;
  const T* norm = static_cast<const T*>(is_q ? args.q_norm : args.k_norm);
  float a[8], b[8] = {};
  detail::load8(src + ia, a);
  if (!args.interleaved) detail::load8(src + ib, b);
  if (norm) {
    float sum_sq = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) sum_sq += a[j] * a[j] + b[j] * b[j];
    const int lane = threadIdx.x % 32;
    const unsigned group = threads_per_head == 32 ? 0xffffffffu
                                                  : ((1u << threads_per_head) - 1) << (lane & ~(threads_per_head - 1));
    for (int offset = 1; offset < threads_per_head; offset <<= 1) sum_sq += __shfl_xor_sync(group, sum_sq, offset);
    const float inv = rsqrtf(sum_sq / static_cast<float>(d) + args.norm_eps);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      a[j] = a[j] * inv * to_float(norm[ia + j]);
      if (!args.interleaved) b[j] = b[j] * inv * to_float(norm[ib + j]);
    }
  }
  float oa[8], ob[8];
  if (args.interleaved) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int p = c * 4 + j;
      oa[2 * j] = a[2 * j] * cos[p] - a[2 * j + 1] * sin[p];
      oa[2 * j + 1] = a[2 * j] * sin[p] + a[2 * j + 1] * cos[p];
    }
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int i = ia + j;
      oa[j] = a[j] * cos[i] - b[j] * sin[i];
      ob[j] = a[j] * sin[i] + b[j] * cos[i];
    }
    detail::store8(dst + ib, ob);
  }
  detail::store8(dst + ia, oa);
}

// Threads per head for the vectorised kernel, or 0 when the head size does not suit it.
int vector_threads_per_head(const RopeSplitArgs& args) {
  const int d = args.head_dim;
  if (args.interleaved ? d % 8 != 0 : d % 16 != 0) return 0;
  const int threads = args.interleaved ? d / 8 : d / 16;
  return threads <= 32 && (threads & (threads - 1)) == 0 ? threads : 0;
}

template <typename T>
cudaError_t launch_rope_split(const RopeSplitArgs& args, cudaStream_t stream) {
  if (args.num_tokens == 0) return cudaSuccess;
  if (const int per_head = vector_threads_per_head(args); per_head > 0) {
    constexpr int kThreads = 256;
    const int threads = (args.num_heads + 2 * args.num_kv_heads) * per_head;
    const dim3 grid(args.num_tokens, (threads + kThreads - 1) / kThreads);
    return detail::launch_chained(rope_split_vector_kernel<T>, grid, dim3(kThreads), 0, stream, args, per_head);
  }
  constexpr int kWarps = 8;
  const dim3 grid(args.num_tokens, (args.num_heads + 2 * args.num_kv_heads + kWarps - 1) / kWarps);
  return detail::launch_chained(rope_split_kernel<T>, grid, dim3(kWarps * 32), 0, stream, args);
}

}  // namespace

cudaError_t rope_split_qkv(const RopeSplitArgs& args, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_rope_split, args, stream);
}

}  // namespace loom::kernels::cuda
