// Paged attention over a mixed batch (see paged_attention.h and attention_plan.h).
//
// Each work item (tile of query tokens x one KV head x a key range) is one CTA of four warps.
// A warp owns one query token and H of the KV head's query heads (H = 4, 2 or 1, dividing the
// group) at a time; its lanes form groups of `lanes_per_key` lanes, each lane holding 8 of the
// head's dimensions, so a warp scores 32 / lanes_per_key keys per iteration with one 16-byte
// load per lane for all H heads and a few shuffles, then updates H online softmaxes (log2
// domain, fp32). Grouped-query attention so reads each cached key once per group of H heads
// rather than once per head. When an item has fewer than four such tasks (decode), several warps
// split its keys and merge in shared memory. The step's own keys and values are read from k_new /
// v_new, and each is stored into the cache by the one item whose tile and key range hold it
// (nothing in the launch reads them from there). Split-K items write unnormalised partial results; the last of a tile's
// splits to finish (a counter per tile) merges them.
#include <cfloat>

#include "common.cuh"
#include "loom/kernels/cuda/paged_attention.h"
#include "prefill_attention.cuh"

namespace loom::kernels::cuda {

using detail::from_float;
using detail::to_float;

namespace {

template <typename T, int D>
cudaError_t launch_prefill(const PagedAttentionArgs& args, cudaStream_t stream) {
  constexpr std::size_t smem = detail::prefill_smem_bytes<D>();
  static bool configured = false;  // per instantiation: allow more than 48 KiB of shared memory
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(detail::prefill_attention_kernel<T, D>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    configured = true;
  }
  return detail::launch_chained(detail::prefill_attention_kernel<T, D>, dim3(args.num_prefill_tiles, args.num_heads),
                                dim3(128), smem, stream, args);
}

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
__global__ void write_kv_kernel(const T* k, const T* v, const std::int32_t* slots, const std::int32_t* num_tokens,
                                int row_elements, T* k_cache, T* v_cache) {
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  const int t = blockIdx.x;
  if (t >= *num_tokens) return;
  const std::int32_t slot = slots[t];
  if (slot < 0) return;
  const std::size_t src = static_cast<std::size_t>(t) * row_elements;
  const std::size_t dst = static_cast<std::size_t>(slot) * row_elements;
  // 16-byte copies: row_elements is a multiple of 8 (head_dim is).
  for (int i = threadIdx.x * 8; i < row_elements; i += blockDim.x * 8) {
    *reinterpret_cast<uint4*>(k_cache + dst + i) = *reinterpret_cast<const uint4*>(k + src + i);
    *reinterpret_cast<uint4*>(v_cache + dst + i) = *reinterpret_cast<const uint4*>(v + src + i);
  }
}

template <typename T>
cudaError_t launch_write_kv(const void* k, const void* v, const std::int32_t* slots, const std::int32_t* num_tokens,
                            int max_tokens, int num_kv_heads, int head_dim, void* k_cache, void* v_cache,
                            cudaStream_t stream) {
  if (max_tokens == 0) return cudaSuccess;
  return detail::launch_chained(write_kv_kernel<T>, dim3(max_tokens), dim3(128), 0, stream, static_cast<const T*>(k),
                                static_cast<const T*>(v), slots, num_tokens, num_kv_heads * head_dim,
                                static_cast<T*>(k_cache), static_cast<T*>(v_cache));
}

struct RowState {
  float m;       // running max of scores (log2 domain); -inf before any key
  float l;       // sum of exp2(score - m) over this lane group's keys
  float acc[8];  // sum of exp2(score - m) * v over this lane group's keys, this lane's 8 dims
};

// A warp's rows: one query token and H heads of one KV-head group. Every K/V load serves all H
// heads (grouped-query attention reads each cached key once per group, not once per head).
template <typename T, int H>
__device__ void attend_rows(const PagedAttentionArgs& a, const AttentionSeqMeta& seq, const AttentionWorkItem& item,
                            int head0, int q_row, int k_begin, int k_end, int first_iter, int iter_stride,
                            int lanes_per_key, RowState (&st)[H]) {
  const int lane = threadIdx.x % 32;
  const int key_group = lane / lanes_per_key, key_lane = lane % lanes_per_key;
  const int keys_per_iter = 32 / lanes_per_key;
  const int d = a.head_dim;
  const bool dims_here = key_lane * 8 < d;
  const float q_scale = a.scale * kLog2e;
  float q[H][8];
#pragma unroll
  for (int h = 0; h < H; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) q[h][i] = 0.0f;
    if (dims_here) {
      detail::load8(
          static_cast<const T*>(a.q) + (static_cast<std::size_t>(q_row) * a.num_heads + head0 + h) * d + key_lane * 8,
          q[h]);
#pragma unroll
      for (int i = 0; i < 8; ++i) q[h][i] *= q_scale;
    }
    st[h].m = -INFINITY;
    st[h].l = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) st[h].acc[i] = 0.0f;
  }

  const std::int32_t* table = a.block_tables + seq.table_offset;
  const T* k_cache = static_cast<const T*>(a.k_cache);
  const T* v_cache = static_cast<const T*>(a.v_cache);
  const int first_new = seq.ctx_len - seq.q_len;  // keys from here on are the step's own
  const std::size_t token_stride = static_cast<std::size_t>(a.num_kv_heads) * d;
  const std::size_t head_offset = static_cast<std::size_t>(item.kv_head) * d + key_lane * 8;
  // kUnroll iterations' K/V loads are issued before any is used, so each lane keeps several
  // 16-byte loads in flight: the loop is bound by memory latency otherwise. Each lane group keeps
  // its own running max, so a key costs only the shuffles of its own dot products; the groups
  // are brought to one max once, at the end.
  constexpr int kUnroll = 4;
  const int step = iter_stride * keys_per_iter;
  for (int base = k_begin + first_iter * keys_per_iter; base < k_end; base += kUnroll * step) {
    uint4 k_raw[kUnroll], v_raw[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int key = base + u * step + key_group;
      valid[u] = key < k_end;
      k_raw[u] = v_raw[u] = make_uint4(0, 0, 0, 0);
      if (valid[u] && dims_here) {
        const T *k_at, *v_at;
        if (key >= first_new) {
          const std::size_t off = static_cast<std::size_t>(seq.q_start + key - first_new) * token_stride + head_offset;
          k_at = static_cast<const T*>(a.k_new) + off;
          v_at = static_cast<const T*>(a.v_new) + off;
        } else {
          const std::int32_t block = table[key / a.block_size];
          const std::size_t off =
              (static_cast<std::size_t>(block) * a.block_size + key % a.block_size) * token_stride + head_offset;
          k_at = k_cache + off;
          v_at = v_cache + off;
        }
        k_raw[u] = *reinterpret_cast<const uint4*>(k_at);
        v_raw[u] = *reinterpret_cast<const uint4*>(v_at);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kv[8], vals[8];
      detail::unpack8<T>(k_raw[u], kv);
      detail::unpack8<T>(v_raw[u], vals);
      float dot[H];
#pragma unroll
      for (int h = 0; h < H; ++h) {
        dot[h] = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) dot[h] += q[h][i] * kv[i];
      }
      for (int offset = lanes_per_key / 2; offset > 0; offset >>= 1) {
#pragma unroll
        for (int h = 0; h < H; ++h) dot[h] += __shfl_xor_sync(0xffffffffu, dot[h], offset);
      }
      if (!valid[u]) continue;  // uniform within the lane group
#pragma unroll
      for (int h = 0; h < H; ++h) {
        const float m_new = fmaxf(st[h].m, dot[h]);
        const float alpha = exp2f(st[h].m - m_new);  // 0 while st.m is -inf
        const float p = exp2f(dot[h] - m_new);
        st[h].l = st[h].l * alpha + p;
#pragma unroll
        for (int i = 0; i < 8; ++i) st[h].acc[i] = st[h].acc[i] * alpha + p * vals[i];
        st[h].m = m_new;
      }
    }
  }
  // Bring the lane groups to one max, then sum them.
#pragma unroll
  for (int h = 0; h < H; ++h) {
    const float m_all = detail::warp_max(st[h].m);
    const float rescale = st[h].m == -INFINITY ? 0.0f : exp2f(st[h].m - m_all);
    st[h].m = m_all;
    st[h].l *= rescale;
#pragma unroll
    for (int i = 0; i < 8; ++i) st[h].acc[i] *= rescale;
    for (int offset = lanes_per_key; offset < 32; offset <<= 1) {
      st[h].l += __shfl_xor_sync(0xffffffffu, st[h].l, offset);
#pragma unroll
      for (int i = 0; i < 8; ++i) st[h].acc[i] += __shfl_xor_sync(0xffffffffu, st[h].acc[i], offset);
    }
  }
}

// Writes a finished row: normalised into `out`, or unnormalised into its partial slot.
template <typename T>
__device__ void store_row(const PagedAttentionArgs& a, const AttentionWorkItem& item, int row, int head, int q_row,
                          const RowState& st, int lanes_per_key) {
  const int lane = threadIdx.x % 32;
  const int d = a.head_dim;
  if (lane >= lanes_per_key || lane * 8 >= d) return;
  if (item.partial < 0) {
    const float inv = st.l > 0.0f ? 1.0f / st.l : 0.0f;
    float o[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = st.acc[i] * inv;
    detail::store8(static_cast<T*>(a.out) + (static_cast<std::size_t>(q_row) * a.num_heads + head) * d + lane * 8, o);
    if (a.lse != nullptr && lane == 0)
      a.lse[static_cast<std::size_t>(q_row) * a.num_heads + head] = st.l > 0.0f ? st.m + log2f(st.l) : -INFINITY;
  } else {
    const std::size_t slot_row = static_cast<std::size_t>(item.partial) * a.rows_per_item + row;
    float* dst = a.partial_out + slot_row * d + lane * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = st.acc[i];
    if (lane == 0) {
      a.partial_max_sum[slot_row * 2] = st.m;
      a.partial_max_sum[slot_row * 2 + 1] = st.l;
    }
  }
}

// Stores the step's keys that this item covers (its tile's tokens within its key range, for its
// KV head) into the cache: every new key belongs to exactly one item of its own token's tile.
template <typename T>
__device__ void store_new_keys(const PagedAttentionArgs& a, const AttentionSeqMeta& seq,
                               const AttentionWorkItem& item) {
  const int first_new = seq.ctx_len - seq.q_len;
  const int begin = max(item.k_begin, first_new + item.q_begin);
  const int end = min(item.k_end, first_new + item.q_begin + item.q_count);
  const int chunks = a.head_dim / 8;
  const std::size_t token_stride = static_cast<std::size_t>(a.num_kv_heads) * a.head_dim;
  const std::size_t head_offset = static_cast<std::size_t>(item.kv_head) * a.head_dim;
  const T* k_new = static_cast<const T*>(a.k_new);
  const T* v_new = static_cast<const T*>(a.v_new);
  T* k_cache = static_cast<T*>(a.k_cache);
  T* v_cache = static_cast<T*>(a.v_cache);
  for (int i = threadIdx.x; i < (end - begin) * chunks; i += blockDim.x) {
    const int key = begin + i / chunks, c = i % chunks;
    const std::int32_t block = a.block_tables[seq.table_offset + key / a.block_size];
    const std::size_t dst =
        (static_cast<std::size_t>(block) * a.block_size + key % a.block_size) * token_stride + head_offset + c * 8;
    const std::size_t src =
        static_cast<std::size_t>(seq.q_start + key - first_new) * token_stride + head_offset + c * 8;
    *reinterpret_cast<uint4*>(k_cache + dst) = *reinterpret_cast<const uint4*>(k_new + src);
    *reinterpret_cast<uint4*>(v_cache + dst) = *reinterpret_cast<const uint4*>(v_new + src);
  }
}

// Called by a whole CTA once a split item's partial rows are stored: the last of the tile's
// splits to arrive merges them, out = sum_s w_s acc_s / sum_s w_s l_s with w_s = 2^(m_s - m),
// and leaves the tile's counter at zero for the next launch.
template <typename T>
__device__ void merge_if_last(const PagedAttentionArgs& a, const AttentionSeqMeta& seq, const AttentionWorkItem& item,
                              int group, int lanes_per_key, int* shared_last) {
  const int first = item.partial - item.split;
  __threadfence();  // this CTA's partial rows are visible to whichever CTA merges
  __syncthreads();
  if (threadIdx.x == 0) {
    const bool last = atomicAdd(a.split_counters + first, 1) == item.num_splits - 1;
    if (last) a.split_counters[first] = 0;
    *shared_last = last;
  }
  __syncthreads();
  if (!*shared_last) return;
  __threadfence();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bool dims_here = lane < lanes_per_key && lane * 8 < a.head_dim;
  AttentionWorkItem whole = item;
  whole.partial = -1;  // store_row writes the output
  for (int row = warp; row < item.q_count * group; row += kWarps) {
    auto slot_row = [&](int s) { return static_cast<std::size_t>(first + s) * a.rows_per_item + row; };
    // L2 loads (__ldcg): the partial rows were written by other CTAs during this launch.
    float m = -INFINITY;
    for (int s = 0; s < item.num_splits; ++s) m = fmaxf(m, __ldcg(a.partial_max_sum + slot_row(s) * 2));
    RowState st;
    st.m = m;
    st.l = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) st.acc[i] = 0.0f;
    for (int s = 0; s < item.num_splits; ++s) {
      const float w_s = m == -INFINITY ? 0.0f : exp2f(__ldcg(a.partial_max_sum + slot_row(s) * 2) - m);
      st.l += __ldcg(a.partial_max_sum + slot_row(s) * 2 + 1) * w_s;
      if (dims_here) {
        const float4* part = reinterpret_cast<const float4*>(a.partial_out + slot_row(s) * a.head_dim + lane * 8);
        const float4 lo = __ldcg(part), hi = __ldcg(part + 1);
        const float p[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int i = 0; i < 8; ++i) st.acc[i] += p[i] * w_s;
      }
    }
    const int head = item.kv_head * group + row % group;
    store_row<T>(a, whole, row, head, seq.q_start + item.q_begin + row / group, st, lanes_per_key);
  }
}

// Before the wait for the previous kernel: what the CTA's first item reads that no kernel of
// this step writes, its plan entries (copied in before the step) and the keys and values of
// earlier steps in its range (one 128-byte line per thread, into L2), is fetched while the
// QKV projection finishes; after the wait the same reads hit the caches.
template <typename T>
__device__ void prefetch_first_item(const PagedAttentionArgs& a) {
  if (static_cast<int>(blockIdx.x) >= a.counts[0]) return;
  const AttentionWorkItem item = a.items[blockIdx.x];
  const AttentionSeqMeta seq = a.seqs[item.seq];
  const int end = min(item.k_end, seq.ctx_len - seq.q_len);  // keys from there on are the step's own
  constexpr int kLineElements = 128 / sizeof(T);
  const int lines_per_row = (a.head_dim + kLineElements - 1) / kLineElements;
  const int line = threadIdx.x % lines_per_row, which = threadIdx.x / lines_per_row % 2;  // K or V
  const int key = item.k_begin + static_cast<int>(threadIdx.x) / (2 * lines_per_row);
  if (key >= end) return;
  const std::int32_t block = a.block_tables[seq.table_offset + key / a.block_size];
  const std::size_t at =
      (static_cast<std::size_t>(block) * a.block_size + key % a.block_size) * a.num_kv_heads * a.head_dim +
      static_cast<std::size_t>(item.kv_head) * a.head_dim + line * kLineElements;
  const T* row = static_cast<const T*>(which == 0 ? a.k_cache : a.v_cache) + at;
  asm volatile("prefetch.global.L2 [%0];" ::"l"(row));
}

// H: heads of a KV-head group per warp (a divisor of the group: 4, 2 or 1).
template <typename T, int H>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(PagedAttentionArgs a) {
  prefetch_first_item<T>(a);
  detail::wait_then_allow_dependents();  // chained launch (common.cuh)
  __shared__ float shared_ml[kWarps][H][2];
  __shared__ float shared_acc[kWarps][H][kMaxHeadDim];
  __shared__ int shared_last;
  const int num_items = a.counts[0];
  const int group = a.num_heads / a.num_kv_heads;
  const int warp_rows_per_token = group / H;
  const int chunks = (a.head_dim + 7) / 8;
  int lanes_per_key = 1;
  while (lanes_per_key < chunks) lanes_per_key <<= 1;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bool dims_here = lane < lanes_per_key && lane * 8 < a.head_dim;

  for (int w = blockIdx.x; w < num_items; w += gridDim.x) {
    const AttentionWorkItem item = a.items[w];
    const AttentionSeqMeta seq = a.seqs[item.seq];
    store_new_keys<T>(a, seq, item);
    // A task is H rows (one token's heads head0 .. head0 + H - 1); its rows within the item are
    // task_rows * H + h, as the partial slots number them (token * group + head in group).
    const int task_rows = item.q_count * warp_rows_per_token;
    const int warps_per_row = task_rows >= kWarps ? 1 : kWarps / task_rows;
    const int tasks = task_rows * warps_per_row;
    for (int task = warp; task < tasks; task += kWarps) {
      const int tr = task / warps_per_row, sub = task % warps_per_row;
      const int token = item.q_begin + tr / warp_rows_per_token;  // within the sequence's query rows
      const int head0 = item.kv_head * group + tr % warp_rows_per_token * H;
      const int q_row = seq.q_start + token;
      const int last_key = seq.ctx_len - seq.q_len + token;  // causal: keys up to the token itself
      const int k_end = min(item.k_end, last_key + 1);
      RowState st[H];
      attend_rows<T, H>(a, seq, item, head0, q_row, item.k_begin, k_end, sub, warps_per_row, lanes_per_key, st);
      if (warps_per_row == 1) {
#pragma unroll
        for (int h = 0; h < H; ++h) store_row<T>(a, item, tr * H + h, head0 + h, q_row, st[h], lanes_per_key);
        continue;
      }
#pragma unroll
      for (int h = 0; h < H; ++h) {
        if (dims_here) {
#pragma unroll
          for (int i = 0; i < 8; ++i) shared_acc[warp][h][lane * 8 + i] = st[h].acc[i];
        }
        if (lane == 0) {
          shared_ml[warp][h][0] = st[h].m;
          shared_ml[warp][h][1] = st[h].l;
        }
      }
    }
    if (warps_per_row > 1) {
      __syncthreads();
      if (warp < tasks && warp % warps_per_row == 0) {
        const int tr = warp / warps_per_row;
        const int token = item.q_begin + tr / warp_rows_per_token;
        const int head0 = item.kv_head * group + tr % warp_rows_per_token * H;
#pragma unroll
        for (int h = 0; h < H; ++h) {
          float m = -INFINITY;
          for (int s = 0; s < warps_per_row; ++s) m = fmaxf(m, shared_ml[warp + s][h][0]);
          RowState st;
          st.m = m;
          st.l = 0.0f;
#pragma unroll
          for (int i = 0; i < 8; ++i) st.acc[i] = 0.0f;
          for (int s = 0; s < warps_per_row; ++s) {
            const float w_s = m == -INFINITY ? 0.0f : exp2f(shared_ml[warp + s][h][0] - m);
            st.l += shared_ml[warp + s][h][1] * w_s;
            if (dims_here) {
#pragma unroll
              for (int i = 0; i < 8; ++i) st.acc[i] += shared_acc[warp + s][h][lane * 8 + i] * w_s;
            }
          }
          store_row<T>(a, item, tr * H + h, head0 + h, seq.q_start + token, st, lanes_per_key);
        }
      }
      __syncthreads();  // shared memory is reused by the next item
    }
    if (item.partial >= 0) merge_if_last<T>(a, seq, item, group, lanes_per_key, &shared_last);
  }
}

// Heads per warp for a group size: its largest divisor among 4, 2, 1.
int heads_per_warp(int group) { return group % 4 == 0 ? 4 : group % 2 == 0 ? 2 : 1; }

template <typename T>
cudaError_t launch_attention(const PagedAttentionArgs& args, cudaStream_t stream) {
  if (args.head_dim % 8 != 0 || args.head_dim > kMaxHeadDim || args.num_kv_heads <= 0 ||
      args.num_heads % args.num_kv_heads != 0)
    return cudaErrorInvalidValue;
  if (args.num_prefill_tiles > 0) {
    cudaError_t e = launch_write_kv<T>(args.k_new, args.v_new, args.slots, args.counts + 1, args.max_tokens,
                                       args.num_kv_heads, args.head_dim, args.k_cache, args.v_cache, stream);
    if (e != cudaSuccess) return e;
    e = args.head_dim == 128  ? launch_prefill<T, 128>(args, stream)
        : args.head_dim == 64 ? launch_prefill<T, 64>(args, stream)
                              : cudaErrorInvalidValue;
    if (e != cudaSuccess) return e;
  }
  if (args.grid <= 0) return cudaSuccess;
  const int h = heads_per_warp(args.num_heads / args.num_kv_heads);
  const dim3 grid(args.grid), block(kWarps * 32);
  return h == 4   ? detail::launch_chained(attention_kernel<T, 4>, grid, block, 0, stream, args)
         : h == 2 ? detail::launch_chained(attention_kernel<T, 2>, grid, block, 0, stream, args)
                  : detail::launch_chained(attention_kernel<T, 1>, grid, block, 0, stream, args);
}

}  // namespace

bool prefill_kernel_supports(int head_dim) { return head_dim == 64 || head_dim == 128; }

template <typename T, int H>
int blocks_per_sm() {
  int per_sm = 0;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, attention_kernel<T, H>, kWarps * 32, 0) == cudaSuccess
             ? per_sm
             : 0;
}

int attention_grid(DType dtype, int group) {
  if ((dtype != DType::f16 && dtype != DType::bf16) || group < 1) return 0;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 0;
  const int h = heads_per_warp(group);
  const bool f16 = dtype == DType::f16;
  const int per_sm = h == 4   ? (f16 ? blocks_per_sm<__half, 4>() : blocks_per_sm<__nv_bfloat16, 4>())
                     : h == 2 ? (f16 ? blocks_per_sm<__half, 2>() : blocks_per_sm<__nv_bfloat16, 2>())
                              : (f16 ? blocks_per_sm<__half, 1>() : blocks_per_sm<__nv_bfloat16, 1>());
  return std::max(1, per_sm) * sms;
}

cudaError_t paged_attention(const PagedAttentionArgs& args, DType dtype, cudaStream_t stream) {
  return LOOM_DISPATCH_DTYPE(dtype, launch_attention, args, stream);
}

}  // namespace loom::kernels::cuda
