// QKV split + (QK-norm) + RoPE (see rope.h). Blocks of eight warps, one warp per head of one
// token: q heads, then k heads, then v heads (copied).
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
cudaError_t launch_rope_split(const RopeSplitArgs& args, cudaStream_t stream) {
  if (args.num_tokens == 0) return cudaSuccess;
  constexpr int kWarps = 8;
  const dim3 grid(args.num_tokens, (args.num_heads + 2 * args.num_kv_heads + kWarps - 1) / kWarps);
  rope_split_kernel<T><<<grid, kWarps * 32, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace

cudaError_t rope_split_qkv(const RopeSplitArgs& args, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_rope_split)(args, stream);
}

}  // namespace loom::kernels::cuda
