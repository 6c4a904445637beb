// Relay attention's shared-prefix pass and merge (see relay_attention.h).
//
// A CTA of four warps takes 32 rows (sharing query tokens x the query heads of one KV head, so
// grouped-query heads share every load) and a chunk of the prefix. It walks the chunk 32 keys at
// a time: the CTA stages the keys and values in shared memory as fp32 (once for all 32 rows),
// each warp scores its 8 rows against them (lane = key, the rows' queries broadcast from shared
// memory), updates 8 online softmaxes (base 2, fp32) and accumulates P.V with each lane holding
// head dimensions lane, lane + 32, ... The merge gives every (row, head) one warp.
#include <algorithm>
#include <cfloat>

#include "common.cuh"
#include "loom/kernels/cuda/relay_attention.h"

namespace loom::kernels::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 8;
constexpr int kRows = kWarps * kRowsPerWarp;  // rows per CTA
constexpr int kKeys = 32;                     // keys per shared-memory tile: one per lane
constexpr int kMaxHeadDim = 256;
constexpr float kLog2e = 1.4426950408889634f;

// Floats of shared memory: queries [kRows][d], keys [kKeys][d + 4] (the pad spreads a quarter
// warp's 16-byte loads of different keys over all banks), values [kKeys][d], and each warp's
// probabilities [kRowsPerWarp][kKeys].
std::size_t smem_floats(int d) {
  return static_cast<std::size_t>(kRows) * d + kKeys * (d + 4) + kKeys * d + kWarps * kRowsPerWarp * kKeys;
}

// C: head dimensions per lane (d <= 32 * C).
template <typename T, int C>
__global__ void __launch_bounds__(kWarps * 32) relay_prefix_kernel(RelayAttentionArgs a) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  extern __shared__ float4 smem4[];
  const int d = a.head_dim;
  float* q_s = reinterpret_cast<float*>(smem4);
  float* k_s = q_s + kRows * d;
  float* v_s = k_s + kKeys * (d + 4);
  float* p_s = v_s + kKeys * d;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* p_warp = p_s + warp * kRowsPerWarp * kKeys;

  const int num_tokens = a.counts[0];
  if (num_tokens == 0) return;
  const int prefix_keys = a.counts[1], keys_per_chunk = a.counts[2];
  const int group = a.num_heads / a.num_kv_heads;
  const int rows_per_head = num_tokens * group;  // (token, head of the group) pairs per KV head
  const int row_tiles = (rows_per_head + kRows - 1) / kRows;
  const int chunks = (prefix_keys + keys_per_chunk - 1) / keys_per_chunk;
  const int units = row_tiles * a.num_kv_heads * chunks;
  const int vecs = d / 8;  // 16-byte vectors per head row
  const std::size_t token_stride = static_cast<std::size_t>(a.num_kv_heads) * d;
  const float q_scale = a.scale * kLog2e;
  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);

  // Tiles of one (KV head, chunk) are neighbours, so CTAs running together share their keys in L2.
  for (int unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int tile = unit % row_tiles;
    const int kv_head = unit / row_tiles % a.num_kv_heads;
    const int chunk = unit / row_tiles / a.num_kv_heads;
    const int key_begin = chunk * keys_per_chunk;
    const int key_end = min(prefix_keys, key_begin + keys_per_chunk);

    __syncthreads();  // the previous unit is done with shared memory
    for (int i = threadIdx.x; i < kRows * vecs; i += blockDim.x) {
      const int r = i / vecs, vec = i % vecs;
      const int row = tile * kRows + r;
      float q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (row < rows_per_head) {
        const int head = kv_head * group + row % group;
        detail::load8(static_cast<const T*>(a.q) +
                          (static_cast<std::size_t>(a.rows[row / group]) * a.num_heads + head) * d + vec * 8,
                      q);
      }
      float4* dst = reinterpret_cast<float4*>(q_s + r * d + vec * 8);
      dst[0] = make_float4(q[0] * q_scale, q[1] * q_scale, q[2] * q_scale, q[3] * q_scale);
      dst[1] = make_float4(q[4] * q_scale, q[5] * q_scale, q[6] * q_scale, q[7] * q_scale);
    }

    float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][C];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      m[r] = -INFINITY;
      l[r] = 0.0f;
#pragma unroll
      for (int c = 0; c < C; ++c) acc[r][c] = 0.0f;
    }
    const float* q_warp = q_s + warp * kRowsPerWarp * d;

    for (int key0 = key_begin; key0 < key_end; key0 += kKeys) {
      __syncthreads();  // the previous tile's keys are no longer read
      for (int i = threadIdx.x; i < kKeys * vecs; i += blockDim.x) {
        const int j = i / vecs, vec = i % vecs, key = key0 + j;
        float kv[8] = {0, 0, 0, 0, 0, 0, 0, 0}, vv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (key < key_end) {
          const std::size_t at =
              (static_cast<std::size_t>(a.prefix_blocks[key / a.block_size]) * a.block_size + key % a.block_size) *
                  token_stride +
              static_cast<std::size_t>(kv_head) * d + vec * 8;
          detail::load8(k_cache + at, kv);
          detail::load8(v_cache + at, vv);
        }
        float4* k_dst = reinterpret_cast<float4*>(k_s + j * (d + 4) + vec * 8);
        float4* v_dst = reinterpret_cast<float4*>(v_s + j * d + vec * 8);
        k_dst[0] = make_float4(kv[0], kv[1], kv[2], kv[3]);
        k_dst[1] = make_float4(kv[4], kv[5], kv[6], kv[7]);
        v_dst[0] = make_float4(vv[0], vv[1], vv[2], vv[3]);
        v_dst[1] = make_float4(vv[4], vv[5], vv[6], vv[7]);
      }
      __syncthreads();

      // Scores: lane j against key key0 + j, for the warp's 8 rows.
      float s[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.0f;
      const float* k_row = k_s + lane * (d + 4);
      for (int i = 0; i < d; i += 4) {
        const float4 k4 = *reinterpret_cast<const float4*>(k_row + i);
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
          const float4 q4 = *reinterpret_cast<const float4*>(q_warp + r * d + i);
          s[r] += q4.x * k4.x + q4.y * k4.y + q4.z * k4.z + q4.w * k4.w;
        }
      }
      const bool valid = key0 + lane < key_end;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float score = valid ? s[r] : -INFINITY;
        const float m_new = fmaxf(m[r], detail::warp_max(score));  // finite: lane 0's key is valid
        const float alpha = exp2f(m[r] - m_new);                   // 0 while m is -inf
        const float p = exp2f(score - m_new);
        l[r] = l[r] * alpha + p;
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] *= alpha;
        m[r] = m_new;
        p_warp[r * kKeys + lane] = p;
      }
      __syncwarp();
      for (int j = 0; j < kKeys; j += 4) {
        float4 p4[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) p4[r] = *reinterpret_cast<const float4*>(p_warp + r * kKeys + j);
#pragma unroll
        for (int c = 0; c < C; ++c) {
          const int dim = lane + 32 * c;
          if (dim >= d) break;
          const float v0 = v_s[j * d + dim], v1 = v_s[(j + 1) * d + dim], v2 = v_s[(j + 2) * d + dim],
                      v3 = v_s[(j + 3) * d + dim];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) acc[r][c] += p4[r].x * v0 + p4[r].y * v1 + p4[r].z * v2 + p4[r].w * v3;
        }
      }
      __syncwarp();  // p_warp is rewritten by the next tile
    }

#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float sum = detail::warp_sum(l[r]);
      const int row = tile * kRows + warp * kRowsPerWarp + r;
      if (row >= rows_per_head) continue;  // uniform across the warp
      const int head = kv_head * group + row % group;
      float* dst = a.partial + ((static_cast<std::size_t>(chunk) * num_tokens + row / group) * a.num_heads + head) *
                                   static_cast<std::size_t>(d + 2);
#pragma unroll
      for (int c = 0; c < C; ++c)
        if (lane + 32 * c < d) dst[lane + 32 * c] = acc[r][c];
      if (lane == 0) {
        dst[d] = m[r];
        dst[d + 1] = sum;
      }
    }
  }
}

// One warp per (sharing row, head): out = (out_paged 2^(lse - M) + sum_c acc_c 2^(m_c - M)) /
// (2^(lse - M) + sum_c l_c 2^(m_c - M)), M the largest of lse and the chunks' maxima.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) relay_merge_kernel(RelayAttentionArgs a) {
  detail::wait_then_allow_dependents();
  const int num_tokens = a.counts[0];
  if (num_tokens == 0) return;
  const int chunks = (a.counts[1] + a.counts[2] - 1) / a.counts[2];
  const int d = a.head_dim, lane = threadIdx.x % 32;
  const int units = num_tokens * a.num_heads;
  for (int unit = blockIdx.x * kWarps + threadIdx.x / 32; unit < units; unit += gridDim.x * kWarps) {
    const int token = unit / a.num_heads, head = unit % a.num_heads;
    const std::size_t out_row = (static_cast<std::size_t>(a.rows[token]) * a.num_heads + head);
    const float lse = a.lse[out_row];
    auto part = [&](int c) {
      return a.partial + ((static_cast<std::size_t>(c) * num_tokens + token) * a.num_heads + head) *
                             static_cast<std::size_t>(d + 2);
    };
    float top = lse;
    for (int c = 0; c < chunks; ++c) top = fmaxf(top, part(c)[d]);
    const float w_paged = exp2f(lse - top);  // the chunks' maxima are finite, so top is
    float sum = w_paged;
    for (int c = 0; c < chunks; ++c) sum += part(c)[d + 1] * exp2f(part(c)[d] - top);
    const float inv = 1.0f / sum;
    T* out = static_cast<T*>(a.out) + out_row * d;
    for (int dim = lane; dim < d; dim += 32) {
      float o = detail::to_float(out[dim]) * w_paged;
      for (int c = 0; c < chunks; ++c) o += part(c)[dim] * exp2f(part(c)[d] - top);
      out[dim] = detail::from_float<T>(o * inv);
    }
  }
}

template <typename T, int C>
cudaError_t launch_prefix(const RelayAttentionArgs& a, cudaStream_t stream) {
  const std::size_t smem = smem_floats(a.head_dim) * sizeof(float);
  static bool configured = false;  // per instantiation: allow more than 48 KiB of shared memory
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(relay_prefix_kernel<T, C>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem_floats(32 * C) * sizeof(float)));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  return detail::launch_chained(relay_prefix_kernel<T, C>, dim3(a.grid), dim3(kWarps * 32), smem, stream, a);
}

template <typename T>
cudaError_t launch_relay(const RelayAttentionArgs& a, cudaStream_t stream) {
  if (a.head_dim % 8 != 0 || a.head_dim > kMaxHeadDim || a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0 ||
      a.grid <= 0)
    return cudaErrorInvalidValue;
  const int d = a.head_dim;
  const cudaError_t e = d <= 32    ? launch_prefix<T, 1>(a, stream)
                        : d <= 64  ? launch_prefix<T, 2>(a, stream)
                        : d <= 128 ? launch_prefix<T, 4>(a, stream)
                                   : launch_prefix<T, 8>(a, stream);
  if (e != cudaSuccess) return e;
  return detail::launch_chained(relay_merge_kernel<T>, dim3(a.grid), dim3(kWarps * 32), 0, stream, a);
}

template <typename T, int C>
int prefix_blocks_per_sm(int head_dim) {
  int per_sm = 0;
  // The attribute must allow the size first (launch_prefix sets the same).
  if (cudaFuncSetAttribute(relay_prefix_kernel<T, C>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem_floats(32 * C) * sizeof(float))) != cudaSuccess)
    return 0;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, relay_prefix_kernel<T, C>, kWarps * 32,
                                                       smem_floats(head_dim) * sizeof(float)) == cudaSuccess
             ? per_sm
             : 0;
}

template <typename T>
int grid_for(int head_dim) {
  return head_dim <= 32    ? prefix_blocks_per_sm<T, 1>(head_dim)
         : head_dim <= 64  ? prefix_blocks_per_sm<T, 2>(head_dim)
         : head_dim <= 128 ? prefix_blocks_per_sm<T, 4>(head_dim)
                           : prefix_blocks_per_sm<T, 8>(head_dim);
}

}  // namespace

int relay_attention_grid(DType dtype, int head_dim) {
  if ((dtype != DType::f16 && dtype != DType::bf16) || head_dim <= 0 || head_dim % 8 != 0 || head_dim > kMaxHeadDim)
    return 0;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 0;
  const int per_sm = dtype == DType::f16 ? grid_for<__half>(head_dim) : grid_for<__nv_bfloat16>(head_dim);
  return per_sm * sms;  // 0 when the CTA's shared memory does not fit this device
}

cudaError_t relay_attention(const RelayAttentionArgs& args, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_relay, args, stream);
}

}  // namespace loom::kernels::cuda
