// Tensor-core attention for prefill tiles (flash-attention 2 style), included by paged_attention.cu.
//
// One CTA of four warps per (tile of 128 query rows, query head); each warp owns two m-tiles of
// 16 rows, so every K and V fragment read from shared memory feeds two MMAs. Per tile of 64 keys
// gathered from the paged cache: S = Q K^T with mma.sync m16n8k16 (16-bit inputs, fp32
// accumulation), the causal mask on diagonal tiles only, an online softmax in registers (log2 domain; a row's four lanes share its max), and
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

constexpr int kQueryRows = kPrefillTileRows;  // per CTA: 4 warps x kMTiles m-tiles of 16 rows
constexpr int kMTiles = kQueryRows / 64;
constexpr int kKeyTile = 64;                   // keys per step
static_assert(kQueryRows % 64 == 0, "four warps of whole 16-row m-tiles");

template <int D>
struct PrefillLayout {
  static constexpr int kLd = D + 8;  // 16-bit elements per shared-memory row
  static constexpr std::size_t kBytes = static_cast<std::size_t>(kQueryRows + 4 * kKeyTile) * kLd * 2;  // Q, 2 x K, 2 x V
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
  wait_then_allow_dependents();  // chained launch (common.cuh)
  constexpr int kLd = PrefillLayout<D>::kLd;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);  // [kQueryRows][kLd]
  T* s_k = s_q + kQueryRows * kLd;      // [2][kKeyTile][kLd]
  T* s_v = s_k + 2 * kKeyTile * kLd;    // [2][kKeyTile][kLd]

  const PrefillTile tile = a.prefill_tiles[a.num_prefill_tiles - 1 - blockIdx.x];
  const AttentionSeqMeta seq = a.seqs[tile.seq];
  const int head = blockIdx.y, group = a.num_heads / a.num_kv_heads, kv_head = head / group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int first_pos = seq.ctx_len - seq.q_len + tile.q_begin;  // position of the tile's row 0
  const int last_key = first_pos + tile.q_count - 1;
  const int num_key_tiles = last_key / kKeyTile + 1;

  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);
  const std::int32_t* table = a.block_tables + seq.table_offset;
  auto load_kv = [&](int key_tile, int buffer) {
    T* dk = s_k + buffer * kKeyTile * kLd;
    T* dv = s_v + buffer * kKeyTile * kLd;
    for (int i = threadIdx.x; i < kKeyTile * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = (i % kChunks) * 8, key = key_tile * kKeyTile + r;
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
  for (int i = threadIdx.x; i < kQueryRows * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < tile.q_count;
    const std::size_t at =
        valid ? (static_cast<std::size_t>(seq.q_start + tile.q_begin + r) * a.num_heads + head) * D + c : 0;
    cp_async_16(s_q + r * kLd + c, q + at, valid ? 16 : 0);
  }
  load_kv(0, 0);
  cp_async_commit();

  // Fragment coordinates: lane = 4 g + t holds rows g and g + 8 of each of the warp's 16-row
  // m-tiles, columns 2t, 2t + 1 of every 8-wide n-tile. Row r of m-tile i is tile row
  // warp * 16 * kMTiles + 16 i + r; padding rows get positions too and are never stored.
  const int g = lane / 4, t = lane % 4;
  const int warp_row = warp * 16 * kMTiles;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  float o[kMTiles][D / 8][4];
  float m[kMTiles][2], l[kMTiles][2];
#pragma unroll
  for (int i = 0; i < kMTiles; ++i) {
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[i][n][0] = o[i][n][1] = o[i][n][2] = o[i][n][3] = 0.0f;
    m[i][0] = m[i][1] = -INFINITY;
    l[i][0] = l[i][1] = 0.0f;
  }

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
    const T* k_tile = s_k + buffer * kKeyTile * kLd;
    const T* v_tile = s_v + buffer * kKeyTile * kLd;

    // S = Q K^T: per m-tile 16 rows x 64 keys, as 8 n-tiles of 8 keys; each K fragment serves
    // every m-tile of the warp.
    float s[kMTiles][8][4];
#pragma unroll
    for (int i = 0; i < kMTiles; ++i)
#pragma unroll
      for (int n = 0; n < 8; ++n) s[i][n][0] = s[i][n][1] = s[i][n][2] = s[i][n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      unsigned qa[kMTiles][4];
#pragma unroll
      for (int i = 0; i < kMTiles; ++i)
        ldmatrix_x4(qa[i], s_q + (warp_row + i * 16 + (lane / 8) % 2 * 8 + lane % 8) * kLd + kk * 16 + lane / 16 * 8);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        unsigned kb[4];
        ldmatrix_x4(kb, k_tile + (np * 16 + lane / 16 * 8 + lane % 8) * kLd + kk * 16 + (lane / 8) % 2 * 8);
#pragma unroll
        for (int i = 0; i < kMTiles; ++i) {
          mma_16816<T>(s[i][2 * np], qa[i], kb[0], kb[1]);
          mma_16816<T>(s[i][2 * np + 1], qa[i], kb[2], kb[3]);
        }
      }
    }

    // Scale, mask (only where a key can lie after a row), online softmax.
    const int key0 = kt * kKeyTile;
    const bool diagonal = key0 + kKeyTile - 1 > first_pos;
#pragma unroll
    for (int i = 0; i < kMTiles; ++i) {
      const int pos0 = first_pos + warp_row + i * 16 + g, pos1 = pos0 + 8;
      float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key0 + n * 8 + 2 * t + (e & 1);
          float v = s[i][n][e] * scale_log2;
          if (diagonal && key > (e < 2 ? pos0 : pos1)) v = -INFINITY;
          s[i][n][e] = v;
        }
        mx0 = fmaxf(mx0, fmaxf(s[i][n][0], s[i][n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[i][n][2], s[i][n][3]));
      }
#pragma unroll
      for (int offset = 1; offset < 4; offset <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, offset));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, offset));
      }
      // Key 0 is visible to every row, so after the first tile every max is finite.
      const float new0 = fmaxf(m[i][0], mx0), new1 = fmaxf(m[i][1], mx1);
      const float alpha0 = exp2f(m[i][0] - new0), alpha1 = exp2f(m[i][1] - new1);
      m[i][0] = new0;
      m[i][1] = new1;
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        s[i][n][0] = exp2f(s[i][n][0] - new0);
        s[i][n][1] = exp2f(s[i][n][1] - new0);
        s[i][n][2] = exp2f(s[i][n][2] - new1);
        s[i][n][3] = exp2f(s[i][n][3] - new1);
        sum0 += s[i][n][0] + s[i][n][1];
        sum1 += s[i][n][2] + s[i][n][3];
      }
      l[i][0] = l[i][0] * alpha0 + sum0;  // this lane's columns only; a row's four lanes are summed at the end
      l[i][1] = l[i][1] * alpha1 + sum1;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[i][n][0] *= alpha0;
        o[i][n][1] *= alpha0;
        o[i][n][2] *= alpha1;
        o[i][n][3] *= alpha1;
      }
    }

    // O += P V: S's accumulators of two adjacent n-tiles are the A fragment of 16 keys; each V
    // fragment serves every m-tile of the warp.
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; ++kk) {
      unsigned pa[kMTiles][4];
#pragma unroll
      for (int i = 0; i < kMTiles; ++i) {
        pa[i][0] = pack2<T>(s[i][2 * kk][0], s[i][2 * kk][1]);
        pa[i][1] = pack2<T>(s[i][2 * kk][2], s[i][2 * kk][3]);
        pa[i][2] = pack2<T>(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
        pa[i][3] = pack2<T>(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        unsigned vb[4];
        ldmatrix_x4_trans(vb, v_tile + (kk * 16 + (lane / 8) % 2 * 8 + lane % 8) * kLd + dp * 16 + lane / 16 * 8);
#pragma unroll
        for (int i = 0; i < kMTiles; ++i) {
          mma_16816<T>(o[i][2 * dp], pa[i], vb[0], vb[1]);
          mma_16816<T>(o[i][2 * dp + 1], pa[i], vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this buffer before the next load refills it
  }

  T* out = static_cast<T*>(a.out);
  const std::size_t stride = static_cast<std::size_t>(a.num_heads) * D;
  const std::size_t base = (static_cast<std::size_t>(seq.q_start + tile.q_begin) * a.num_heads + head) * D;
#pragma unroll
  for (int i = 0; i < kMTiles; ++i) {
    float l0 = l[i][0], l1 = l[i][1];
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
      l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
      l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
    }
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int row0 = warp_row + i * 16 + g;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      const int col = n * 8 + 2 * t;
      if (row0 < tile.q_count)
        *reinterpret_cast<unsigned*>(out + base + row0 * stride + col) = pack2<T>(o[i][n][0] * inv0, o[i][n][1] * inv0);
      if (row0 + 8 < tile.q_count)
        *reinterpret_cast<unsigned*>(out + base + (row0 + 8) * stride + col) =
            pack2<T>(o[i][n][2] * inv1, o[i][n][3] * inv1);
    }
  }
}

}  // namespace loom::kernels::cuda::detail
