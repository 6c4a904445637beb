// Tensor-core attention for prefill tiles (flash-attention style), included by paged_attention.cu.
//
// One CTA of four warps per (tile of 64 query rows, query head). Q is staged in shared memory
// once; for each tile of 64 keys gathered from the paged cache, each warp computes its 16 x 64
// scores with WMMA (16-bit inputs, fp32 accumulation), applies the causal mask and an online
// softmax (log2 domain, one lane pair per row), and adds P V (P rounded to 16 bits, as flash
// attention does) into an fp32 output tile kept in shared memory. The output is written once,
// normalised. Rows in shared memory are padded (16-bit tiles by 8 elements, fp32 tiles by 4) so
// that the lanes of a warp, which walk different rows, hit different banks. About 120 KiB of
// shared memory for D = 128.
#pragma once

#include <mma.h>

#include "common.cuh"
#include "loom/kernels/cuda/paged_attention.h"

namespace loom::kernels::cuda::detail {

namespace wmma = nvcuda::wmma;

constexpr int kTileRows = 64;  // query rows per CTA (= kPrefillTileRows) and keys per step

template <int D>
struct PrefillLayout {
  static constexpr int kLdh = D + 8;          // 16-bit Q, K, V rows
  static constexpr int kLdo = D + 4;          // fp32 output rows and per-warp PV rows
  static constexpr int kLds = kTileRows + 4;  // fp32 score rows
  static constexpr int kLdp = kTileRows + 8;  // 16-bit P rows (over the scores)
  static constexpr int kScratch = 16 * (kLdo > kLds ? kLdo : kLds);  // floats per warp
  static constexpr std::size_t kBytes = (3 * kTileRows * kLdh) * 2 + (kTileRows * kLdo + 4 * kScratch) * 4;
};

template <int D>
constexpr std::size_t prefill_smem_bytes() {
  return PrefillLayout<D>::kBytes;
}

template <typename T, int D>
__global__ void __launch_bounds__(128) prefill_attention_kernel(PagedAttentionArgs a) {
  using L = PrefillLayout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_k = s_q + kTileRows * L::kLdh;
  T* s_v = s_k + kTileRows * L::kLdh;
  float* s_o = reinterpret_cast<float*>(s_v + kTileRows * L::kLdh);  // [64][kLdo]
  float* scratch = s_o + kTileRows * L::kLdo;                        // per warp kScratch floats

  const PrefillTile tile = a.prefill_tiles[blockIdx.x];
  const AttentionSeqMeta seq = a.seqs[tile.seq];
  const int head = blockIdx.y, group = a.num_heads / a.num_kv_heads, kv_head = head / group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int first_pos = seq.ctx_len - seq.q_len + tile.q_begin;  // position of the tile's row 0
  const int last_key = first_pos + tile.q_count - 1;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row

  const T* q = static_cast<const T*>(a.q);
  for (int i = threadIdx.x; i < kTileRows * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < tile.q_count)
      value = *reinterpret_cast<const uint4*>(
          q + (static_cast<std::size_t>(seq.q_start + tile.q_begin + r) * a.num_heads + head) * D + c);
    *reinterpret_cast<uint4*>(s_q + r * L::kLdh + c) = value;
  }
  for (int i = threadIdx.x; i < kTileRows * L::kLdo; i += blockDim.x) s_o[i] = 0.0f;

  // Lane pair per row: lanes 2r and 2r + 1 own row r of the warp's 16, half the columns each.
  const int row = lane / 2, half = lane % 2;
  const int row_in_tile = warp * 16 + row;
  const int position = row_in_tile < tile.q_count ? first_pos + row_in_tile : -1;  // -1: padding row
  const float scale_log2 = a.scale * 1.4426950408889634f;
  float m = -INFINITY, l = 0.0f;
  float* s_s = scratch + warp * L::kScratch;  // scores [16][kLds] fp32, then P [16][kLdp], then PV [16][kLdo]
  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);
  const std::int32_t* table = a.block_tables + seq.table_offset;

  for (int k0 = 0; k0 <= last_key; k0 += kTileRows) {
    __syncthreads();  // every warp is done with the previous K/V tile
    for (int i = threadIdx.x; i < kTileRows * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = (i % kChunks) * 8, key = k0 + r;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key <= last_key) {
        const std::size_t at =
            ((static_cast<std::size_t>(table[key / a.block_size]) * a.block_size + key % a.block_size) * a.num_kv_heads +
             kv_head) * D + c;
        kv = *reinterpret_cast<const uint4*>(k_cache + at);
        vv = *reinterpret_cast<const uint4*>(v_cache + at);
      }
      *reinterpret_cast<uint4*>(s_k + r * L::kLdh + c) = kv;
      *reinterpret_cast<uint4*>(s_v + r * L::kLdh + c) = vv;
    }
    __syncthreads();

    // S = Q K^T for the warp's 16 rows.
    for (int n = 0; n < kTileRows / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, s_q + warp * 16 * L::kLdh + kk, L::kLdh);
        wmma::load_matrix_sync(fb, s_k + n * 16 * L::kLdh + kk, L::kLdh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(s_s + n * 16, acc, L::kLds, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax of the row's 64 scores (the even or odd columns per lane), causal mask.
    float p[32];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int col = 2 * j + half;
      const float s = k0 + col <= position ? s_s[row * L::kLds + col] * scale_log2 : -INFINITY;
      p[j] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m - m_new);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      p[j] = m_new == -INFINITY ? 0.0f : exp2f(p[j] - m_new);
      sum += p[j];
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    __syncwarp();  // every lane has read its scores before P overwrites them
    T* s_p = reinterpret_cast<T*>(s_s);
#pragma unroll
    for (int j = 0; j < 32; ++j) s_p[row * L::kLdp + 2 * j + half] = from_float<T>(p[j]);
    __syncwarp();

    // PV = P V for the warp's rows, then O = O * alpha + PV.
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> pv[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fill_fragment(pv[n], 0.0f);
#pragma unroll
      for (int kk = 0; kk < kTileRows; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, s_p + kk, L::kLdp);
        wmma::load_matrix_sync(fb, s_v + kk * L::kLdh + n * 16, L::kLdh);
        wmma::mma_sync(pv[n], fa, fb, pv[n]);
      }
    }
    __syncwarp();  // P is consumed; its space takes PV
#pragma unroll
    for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(s_s + n * 16, pv[n], L::kLdo, wmma::mem_row_major);
    __syncwarp();
    float* o = s_o + row_in_tile * L::kLdo;
    for (int c = half; c < D; c += 2) o[c] = o[c] * alpha + s_s[row * L::kLdo + c];
    __syncwarp();
  }

  if (position >= 0) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    T* out = static_cast<T*>(a.out) + (static_cast<std::size_t>(seq.q_start + tile.q_begin + row_in_tile) * a.num_heads + head) * D;
    const float* o = s_o + row_in_tile * L::kLdo;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); c += 8) {
      float values[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) values[i] = o[c + i] * inv;
      store8(out + c, values);
    }
  }
}

}  // namespace loom::kernels::cuda::detail
