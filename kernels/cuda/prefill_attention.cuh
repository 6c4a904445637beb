// Tensor-core attention for prefill tiles (flash-attention 2 style), included by paged_attention.cu.
//
// One CTA of four warps per (tile of 64 query rows, query head); each warp owns 16 rows. Per tile
// of 64 keys gathered from the paged cache: S = Q K^T with mma.sync m16n8k16 (16-bit inputs, fp32
// accumulation; Q's fragments stay in registers for the whole CTA), the causal mask on diagonal
// tiles only, an online softmax in registers (log2 domain; a row's four lanes share its max), and
// O += P V with P taken straight from S's accumulators (rounded to 16 bits, as flash attention
// does) and O kept in registers. K/V tiles are double-buffered in shared memory with cp.async,
// so the next tile's loads overlap this tile's math; keys past the context are zero-filled.
// Shared-memory rows are padded by 16 bytes so that ldmatrix's eight row reads hit distinct banks.
// Tiles run longest (latest in their sequence) first, so causal imbalance does not leave a tail.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "loom/kernels/cuda/paged_attention.h"

namespace loom::kernels::cuda::detail {

constexpr int kTileRows = 64;  // query rows per CTA (= kPrefillTileRows) and keys per step

template <int D>
struct PrefillLayout {
  static constexpr int kLd = D + 8;  // 16-bit elements per shared-memory row
  static constexpr std::size_t kBytes = static_cast<std::size_t>(5) * kTileRows * kLd * 2;  // Q, 2 x K, 2 x V
};

template <int D>
constexpr std::size_t prefill_smem_bytes() {
  return PrefillLayout<D>::kBytes;
}

__device__ __forceinline__ unsigned smem_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

// 16 bytes global -> shared, asynchronously; src_bytes == 0 writes zeros.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// d += a b for one m16n8k16 tile.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                                         unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of two 16-bit values, the first in the low half.
template <typename T>
__device__ __forceinline__ unsigned pack2(float lo, float hi);
template <>
__device__ __forceinline__ unsigned pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}
template <>
__device__ __forceinline__ unsigned pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}

template <typename T, int D>
__global__ void __launch_bounds__(128, 2) prefill_attention_kernel(PagedAttentionArgs a) {
  constexpr int kLd = PrefillLayout<D>::kLd;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_k = s_q + kTileRows * kLd;      // [2][64][kLd]
  T* s_v = s_k + 2 * kTileRows * kLd;  // [2][64][kLd]

  const PrefillTile tile = a.prefill_tiles[a.num_prefill_tiles - 1 - blockIdx.x];
  const AttentionSeqMeta seq = a.seqs[tile.seq];
  const int head = blockIdx.y, group = a.num_heads / a.num_kv_heads, kv_head = head / group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int first_pos = seq.ctx_len - seq.q_len + tile.q_begin;  // position of the tile's row 0
  const int last_key = first_pos + tile.q_count - 1;
  const int num_key_tiles = last_key / kTileRows + 1;

  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);
  const std::int32_t* table = a.block_tables + seq.table_offset;
  auto load_kv = [&](int key_tile, int buffer) {
    T* dk = s_k + buffer * kTileRows * kLd;
    T* dv = s_v + buffer * kTileRows * kLd;
    for (int i = threadIdx.x; i < kTileRows * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = (i % kChunks) * 8, key = key_tile * kTileRows + r;
      const bool valid = key <= last_key;
      std::size_t at = 0;
      if (valid)
        at = ((static_cast<std::size_t>(table[key / a.block_size]) * a.block_size + key % a.block_size) *
                  a.num_kv_heads + kv_head) * D + c;
      cp_async_16(dk + r * kLd + c, k_cache + at, valid ? 16 : 0);
      cp_async_16(dv + r * kLd + c, v_cache + at, valid ? 16 : 0);
    }
  };

  const T* q = static_cast<const T*>(a.q);
  for (int i = threadIdx.x; i < kTileRows * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < tile.q_count;
    const std::size_t at =
        valid ? (static_cast<std::size_t>(seq.q_start + tile.q_begin + r) * a.num_heads + head) * D + c : 0;
    cp_async_16(s_q + r * kLd + c, q + at, valid ? 16 : 0);
  }
  load_kv(0, 0);
  cp_async_commit();

  // Fragment coordinates: lane = 4 g + t holds rows g and g + 8 of the warp's 16, columns 2t, 2t + 1
  // of every 8-wide n-tile.
  const int g = lane / 4, t = lane % 4;
  const int row0 = warp * 16 + g;
  const int pos0 = first_pos + row0, pos1 = pos0 + 8;  // padding rows get positions too; never stored
  const float scale_log2 = a.scale * 1.4426950408889634f;
  unsigned qa[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

  for (int kt = 0; kt < num_key_tiles; ++kt) {
    const int buffer = kt & 1;
    if (kt + 1 < num_key_tiles) {
      load_kv(kt + 1, buffer ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (kt == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qa[kk], s_q + (warp * 16 + (lane / 8) % 2 * 8 + lane % 8) * kLd + kk * 16 + lane / 16 * 8);
    }
    const T* k_tile = s_k + buffer * kTileRows * kLd;
    const T* v_tile = s_v + buffer * kTileRows * kLd;

    // S = Q K^T: 16 rows x 64 keys per warp, as 8 n-tiles of 8 keys.
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        unsigned kb[4];
        ldmatrix_x4(kb, k_tile + (np * 16 + lane / 16 * 8 + lane % 8) * kLd + kk * 16 + (lane / 8) % 2 * 8);
        mma_16816<T>(s[2 * np], qa[kk], kb[0], kb[1]);
        mma_16816<T>(s[2 * np + 1], qa[kk], kb[2], kb[3]);
      }
    }

    // Scale, mask (only where a key can lie after a row), online softmax.
    const int key0 = kt * kTileRows;
    const bool diagonal = key0 + kTileRows - 1 > first_pos;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + n * 8 + 2 * t + (e & 1);
        float v = s[n][e] * scale_log2;
        if (diagonal && key > (e < 2 ? pos0 : pos1)) v = -INFINITY;
        s[n][e] = v;
      }
      mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
      mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
    }
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, offset));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, offset));
    }
    // Key 0 is visible to every row, so after the first tile every max is finite.
    const float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
    const float alpha0 = exp2f(m0 - new0), alpha1 = exp2f(m1 - new1);
    m0 = new0;
    m1 = new1;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      s[n][0] = exp2f(s[n][0] - new0);
      s[n][1] = exp2f(s[n][1] - new0);
      s[n][2] = exp2f(s[n][2] - new1);
      s[n][3] = exp2f(s[n][3] - new1);
      sum0 += s[n][0] + s[n][1];
      sum1 += s[n][2] + s[n][3];
    }
    l0 = l0 * alpha0 + sum0;  // this lane's columns only; the row's four lanes are summed at the end
    l1 = l1 * alpha1 + sum1;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
    }

    // O += P V: S's accumulators of two adjacent n-tiles are the A fragment of 16 keys.
#pragma unroll
    for (int kk = 0; kk < kTileRows / 16; ++kk) {
      const unsigned pa[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        unsigned vb[4];
        ldmatrix_x4_trans(vb, v_tile + (kk * 16 + (lane / 8) % 2 * 8 + lane % 8) * kLd + dp * 16 + lane / 16 * 8);
        mma_16816<T>(o[2 * dp], pa, vb[0], vb[1]);
        mma_16816<T>(o[2 * dp + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();  // every warp is done with this buffer before the next load refills it
  }

#pragma unroll
  for (int offset = 1; offset < 4; offset <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
    l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
  }
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  T* out = static_cast<T*>(a.out);
  const std::size_t stride = static_cast<std::size_t>(a.num_heads) * D;
  const std::size_t base = (static_cast<std::size_t>(seq.q_start + tile.q_begin) * a.num_heads + head) * D;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    const int col = n * 8 + 2 * t;
    if (row0 < tile.q_count)
      *reinterpret_cast<unsigned*>(out + base + row0 * stride + col) = pack2<T>(o[n][0] * inv0, o[n][1] * inv0);
    if (row0 + 8 < tile.q_count)
      *reinterpret_cast<unsigned*>(out + base + (row0 + 8) * stride + col) = pack2<T>(o[n][2] * inv1, o[n][3] * inv1);
  }
}

}  // namespace loom::kernels::cuda::detail
