// Single-row linear layers (see gemv.h): one kernel, its input staged by a prologue (plain x, or
// RMSNorm of the fp32 residual stream) and its output written by an epilogue (store, add into the
// residual stream, SiLU(gate) * up of a row pair, or the rotary embedding of a row pair).
#include "common.cuh"
#include "loom/kernels/cuda/gemv.h"

namespace loom::kernels::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kLoadsInFlight = 8;  // 16-byte weight loads per lane and batch (two batches in flight)

enum Prologue { kPlainInput, kNormInput };
enum Epilogue { kStore, kAddToResidual, kSiluPair, kRopePair };

struct GemvArgs {
  const void* x = nullptr;            // kPlainInput: [in] of T
  const float* hidden = nullptr;      // kNormInput: the fp32 residual stream [in]
  const void* norm_weight = nullptr;  // kNormInput: [in] of T
  float eps = 0.0f;
  int in = 0;
  const void* w = nullptr;            // [out, in]; [2 out, in] for the pair forms (see member_row)
  int out = 0;                        // rows, or row pairs for the pair forms
  void* y = nullptr;                  // kStore: [out] of T or fp32; kSiluPair: [out] of T; kRopePair: [2 out] of T
  bool y_f32 = false;
  float* residual = nullptr;          // kAddToResidual: [out] fp32, += the rounded output
  const void* bias = nullptr;         // kRopePair: [2 out] of T or null, added before the rotation
  GemvRope rope;                      // kRopePair
};

// Weight row of member r (0 or 1) of pair o: gate row o and up row o for kSiluPair; for kRopePair
// the two rows one rotation mixes, (i, i + d/2) of head h, or (2i, 2i + 1) when interleaved.
template <int kOut>
__device__ __forceinline__ int member_row(const GemvArgs& a, int o, int r) {
  if constexpr (kOut == kRopePair) {
    const int half = a.rope.head_dim / 2, h = o / half, i = o % half;
    return h * a.rope.head_dim + (a.rope.interleaved ? 2 * i + r : i + r * half);
  } else {
    return r * a.out + o;
  }
}

// A 16-byte weight load that bypasses L1: the weights are read once, and L1 keeps nothing but
// the block's copy of x in shared memory that way.
__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// cos and sin of pair o's rotation angle at the token's position (clamped to the table).
__device__ __forceinline__ float2 rope_angle(const GemvArgs& a, int o) {
  const int pos = min(max(*a.rope.position, 0), a.rope.table_positions - 1);
  const int half = a.rope.head_dim / 2, i = o % half;
  const float* row = a.rope.cos_sin + static_cast<std::size_t>(pos) * a.rope.head_dim;
  return make_float2(row[i], row[half + i]);
}

// kRopePair's epilogue: rounds both rows (and again after the bias) as the GEMV and add_bias
// store them, then rotates as rope_split_qkv does, in fp32.
template <typename T>
__device__ void rope_pair(const GemvArgs& a, int o, float acc0, float acc1, float2 angle) {
  const int ra = member_row<kRopePair>(a, o, 0), rb = member_row<kRopePair>(a, o, 1);
  auto rounded = [](float v) { return detail::to_float(detail::from_float<T>(v)); };
  float x0 = rounded(acc0), x1 = rounded(acc1);
  if (a.bias) {
    x0 = rounded(x0 + detail::to_float(static_cast<const T*>(a.bias)[ra]));
    x1 = rounded(x1 + detail::to_float(static_cast<const T*>(a.bias)[rb]));
  }
  T* y = static_cast<T*>(a.y);
  if (ra >= a.rope.rotary_rows) {  // a value head
    y[ra] = detail::from_float<T>(x0);
    y[rb] = detail::from_float<T>(x1);
    return;
  }
  y[ra] = detail::from_float<T>(x0 * angle.x - x1 * angle.y);
  y[rb] = detail::from_float<T>(x0 * angle.y + x1 * angle.x);
}

// Each warp streams rows_per_warp rows (row pairs for the pair forms) as one sequence of batches of
// kLoadsInFlight 16-byte loads per lane, the next batch in flight while the current one is
// multiplied, across row boundaries. The first two batches are issued before the prologue (and,
// with programmatic dependent launch, before the previous kernel has finished): the prologue
// does not touch the weights, and staging x hides under their latency.
template <typename T, int kIn, int kOut>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_kernel(GemvArgs a, int rows_per_warp) {
  constexpr int kRows = kOut == kSiluPair || kOut == kRopePair ? 2 : 1;
  constexpr int kBatch = kLoadsInFlight / kRows;  // loads per lane and row in one batch
  constexpr int kStep = 32 * kBatch;              // chunks one batch covers for the warp
  extern __shared__ uint4 s_x[];                  // x, 8 elements per entry
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int chunks = a.in / 8;
  const int batches_per_row = (chunks + kStep - 1) / kStep;
  const int units = rows_per_warp * batches_per_row;
  const uint4* w = static_cast<const uint4*>(a.w);
  // The k-th row (or pair) of this warp: neighbouring warps and blocks take neighbouring rows.
  auto row_of = [&](int k) { return (k * gridDim.x + blockIdx.x) * kWarpsPerBlock + warp; };
  auto issue = [&](uint4 (&raw)[kRows][kBatch], int unit) {
    const int o = row_of(unit / batches_per_row);
    const int c0 = (unit % batches_per_row) * kStep + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int c = c0 + b * 32;
        raw[r][b] = o < a.out && c < chunks
                        ? load_streaming(w + static_cast<std::size_t>(member_row<kOut>(a, o, r)) * chunks + c)
                        : make_uint4(0, 0, 0, 0);
      }
  };
  uint4 cur[kRows][kBatch], next[kRows][kBatch];
  issue(cur, 0);
  if (units > 1) issue(next, 1);
  detail::wait_for_prerequisite_grid();  // x / hidden come from the previous kernel
  detail::allow_dependent_launch();      // the next GEMV may start loading its weights
  // kRopePair: lane k fetches the rotation of the warp's k-th pair now, behind the prologue, so
  // the epilogue does not stall the weight stream on the table (a shuffle fetches it there).
  float2 angle = make_float2(0.0f, 0.0f);
  if constexpr (kOut == kRopePair)
    if (lane < rows_per_warp && row_of(lane) < a.out) angle = rope_angle(a, row_of(lane));

  if constexpr (kIn == kNormInput) {  // x = rmsnorm(hidden) * weight, rounded as add_rmsnorm rounds it
    const float4* hidden4 = reinterpret_cast<const float4*>(a.hidden);
    float sum_sq = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < a.in / 4; i += blockDim.x) {
      const float4 h = hidden4[i];
      sum_sq += h.x * h.x + h.y * h.y + h.z * h.z + h.w * h.w;
    }
    // The reduction's scratch is the start of s_x (static shared memory would push a 48 KiB x
    // past the default limit); everyone has read the sum before x overwrites it.
    const float inv = rsqrtf(detail::block_sum(sum_sq, reinterpret_cast<float*>(s_x)) / static_cast<float>(a.in) + a.eps);
    __syncthreads();
#pragma unroll 2
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const float4 lo = hidden4[2 * c], hi = hidden4[2 * c + 1];
      const float h[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
      float g[8], x[8];
      detail::unpack8<T>(reinterpret_cast<const uint4*>(a.norm_weight)[c], g);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = h[i] * inv * g[i];
      detail::store8(reinterpret_cast<T*>(s_x + c), x);
    }
  } else {
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) s_x[c] = reinterpret_cast<const uint4*>(a.x)[c];
  }
  __syncthreads();

  float acc[kRows] = {};
  for (int unit = 0; unit < units; ++unit) {
    const int j = unit % batches_per_row;
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int c = j * kStep + lane + b * 32;
      if (c >= chunks) break;
      float xv[8];
      detail::unpack8<T>(s_x[c], xv);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float wv[8];
        detail::unpack8<T>(cur[r][b], wv);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[r] += wv[i] * xv[i];
      }
    }
    if (j == batches_per_row - 1) {  // the row is done: reduce over the warp, write, next row
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = detail::warp_sum(acc[r]);
      const int k = unit / batches_per_row, o = row_of(k);
      float2 pair_angle = angle;
      if constexpr (kOut == kRopePair) {  // from the lane that fetched it (past 32 pairs: the table)
        pair_angle.x = __shfl_sync(0xffffffffu, angle.x, k % 32);
        pair_angle.y = __shfl_sync(0xffffffffu, angle.y, k % 32);
        if (k >= 32 && lane == 0 && o < a.out) pair_angle = rope_angle(a, o);
      }
      if (lane == 0 && o < a.out) {
        // Outputs are rounded to T where the unfused kernels store T, so fused and unfused agree.
        if constexpr (kOut == kStore) {
          if (a.y_f32)
            static_cast<float*>(a.y)[o] = acc[0];
          else
            static_cast<T*>(a.y)[o] = detail::from_float<T>(acc[0]);
        } else if constexpr (kOut == kAddToResidual) {
          a.residual[o] += detail::to_float(detail::from_float<T>(acc[0]));
        } else if constexpr (kOut == kSiluPair) {
          const float gate = detail::to_float(detail::from_float<T>(acc[0]));
          const float up = detail::to_float(detail::from_float<T>(acc[1]));
          static_cast<T*>(a.y)[o] = detail::from_float<T>(gate / (1.0f + __expf(-gate)) * up);
        } else {
          rope_pair<T>(a, o, acc[0], acc[1], pair_angle);
        }
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
    }
    // Waits for the next batch (it has had a whole batch's multiply to arrive), then keeps the
    // one after it in flight while that batch is multiplied.
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int b = 0; b < kBatch; ++b) cur[r][b] = next[r][b];
    if (unit + 2 < units) issue(next, unit + 2);
  }
}

// The grid is as many blocks as fit on the GPU at once (fewer when that gives every warp the
// same number of rows): the prologue runs once per block, and with programmatic dependent launch
// every block is resident early enough to issue its first loads before the previous kernel ends.
// (A grid of one row per warp streams as fast in isolation, but a 7B decode step on the H100 ran
// 2% slower with it for the plain-x forms.) The fit is computed once per kernel, on the device
// current at the first launch (Loom drives one GPU per process).
template <typename T, int kIn, int kOut>
cudaError_t launch(const GemvArgs& a, cudaStream_t stream) {
  if (a.in % 8 != 0 || a.in > kGemvMaxIn || a.out <= 0) return cudaErrorInvalidValue;
  const std::size_t smem = static_cast<std::size_t>(a.in) * sizeof(T);
  static const int resident_blocks = [] {
    int device = 0, sms = 0, per_sm = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<T, kIn, kOut>, kWarpsPerBlock * 32,
                                                      kGemvMaxIn * sizeof(T)) != cudaSuccess)
      return 0;
    return sms * per_sm;
  }();
  if (resident_blocks <= 0) return cudaErrorInvalidConfiguration;
  const int warps_at_once = resident_blocks * kWarpsPerBlock;
  const int rows_per_warp = (a.out + warps_at_once - 1) / warps_at_once;
  const int blocks = (a.out + rows_per_warp * kWarpsPerBlock - 1) / (rows_per_warp * kWarpsPerBlock);
  return detail::launch_chained(gemv_kernel<T, kIn, kOut>, dim3(blocks), dim3(kWarpsPerBlock * 32), smem, stream, a,
                                rows_per_warp);
}

template <int kIn, int kOut>
cudaError_t launch_for(DType dtype, const GemvArgs& a, cudaStream_t stream) {
  if (dtype == DType::f16) return launch<__half, kIn, kOut>(a, stream);
  if (dtype == DType::bf16) return launch<__nv_bfloat16, kIn, kOut>(a, stream);
  return cudaErrorInvalidValue;
}

GemvArgs plain_input(const void* x, int in, const void* w, int out) {
  GemvArgs a;
  a.x = x;
  a.in = in;
  a.w = w;
  a.out = out;
  return a;
}

GemvArgs norm_input(const float* hidden, const void* norm_weight, float eps, int in, const void* w, int out) {
  GemvArgs a;
  a.hidden = hidden;
  a.norm_weight = norm_weight;
  a.eps = eps;
  a.in = in;
  a.w = w;
  a.out = out;
  return a;
}

}  // namespace

cudaError_t gemv(const void* x, int rows, int in, const void* w, int out, void* y, bool y_f32, DType dtype,
                 cudaStream_t stream) {
  if (!gemv_supports(rows, in)) return cudaErrorInvalidValue;
  GemvArgs a = plain_input(x, in, w, out);
  a.y = y;
  a.y_f32 = y_f32;
  return launch_for<kPlainInput, kStore>(dtype, a, stream);
}

cudaError_t gemv_rmsnorm(const float* hidden, const void* norm_weight, float eps, int in, const void* w, int out,
                         void* y, bool y_f32, DType dtype, cudaStream_t stream) {
  GemvArgs a = norm_input(hidden, norm_weight, eps, in, w, out);
  a.y = y;
  a.y_f32 = y_f32;
  return launch_for<kNormInput, kStore>(dtype, a, stream);
}

cudaError_t gemv_rmsnorm_silu(const float* hidden, const void* norm_weight, float eps, int in, const void* w_gate_up,
                              int inter, void* act, DType dtype, cudaStream_t stream) {
  GemvArgs a = norm_input(hidden, norm_weight, eps, in, w_gate_up, inter);
  a.y = act;
  return launch_for<kNormInput, kSiluPair>(dtype, a, stream);
}

cudaError_t gemv_rmsnorm_rope(const float* hidden, const void* norm_weight, float eps, int in, const void* w, int out,
                              const void* bias, const GemvRope& rope, void* qkv, DType dtype, cudaStream_t stream) {
  if (rope.head_dim <= 0 || rope.head_dim % 2 != 0 || out % rope.head_dim != 0 || rope.table_positions <= 0 ||
      rope.rotary_rows > out)
    return cudaErrorInvalidValue;
  GemvArgs a = norm_input(hidden, norm_weight, eps, in, w, out / 2);
  a.y = qkv;
  a.bias = bias;
  a.rope = rope;
  return launch_for<kNormInput, kRopePair>(dtype, a, stream);
}

cudaError_t gemv_add_residual(const void* x, int in, const void* w, int out, float* hidden, DType dtype,
                              cudaStream_t stream) {
  GemvArgs a = plain_input(x, in, w, out);
  a.residual = hidden;
  return launch_for<kPlainInput, kAddToResidual>(dtype, a, stream);
}

}  // namespace loom::kernels::cuda
