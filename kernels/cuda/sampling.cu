// Sampling on the GPU (see sampling.h): one CTA per row, every cut a radix select.
#include <cfloat>
#include <cstdint>

#include "loom/kernels/cuda/sampling.h"

namespace loom::kernels::cuda {

namespace {

using u64 = unsigned long long;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kBinsPerLane = kBins / 32;
constexpr unsigned kFull = 0xffffffffu;

struct RowState {
  const float* logits;
  int vocab;
  int id_bits;     // bits of the id part of the rank key
  int key_bits;    // 32 + id_bits
  int scale_bits;  // a weight of 1 is 2^scale_bits, so vocab such weights still fit in 62 bits
  float max_logit;
  double temperature;
  double min_p;
};

struct Shared {
  u64 hist[kWarps][kBins];  // one histogram per warp: fewer lanes collide on an address
  u64 bins[kBins];
  u64 chosen[3];            // digit, mass before it, threshold
  float warp_max[kWarps];
  int warp_count[kWarps];
  u64 warp_sum[kWarps];
};

// The sampler's view of a logit: NaN and -inf are never drawn, +inf is the largest float, and
// -0 is 0 (they compare equal, so they must rank by id).
__device__ __forceinline__ bool sampleable(float x, float& out) {
  if (isnan(x) || x == -INFINITY) return false;
  out = x == 0.0f ? 0.0f : fminf(x, FLT_MAX);
  return true;
}

// Smaller key = ranked first: larger logit, then lower id.
__device__ __forceinline__ u64 rank_key(float logit, int id, int id_bits) {
  unsigned bits = __float_as_uint(logit);
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);  // unsigned order = float order
  return (static_cast<u64>(~bits) << id_bits) | static_cast<unsigned>(id);
}

// The weight the CPU sampler gives the token, as a fixed-point integer; 0 when it is dropped
// (weight 0 or below min_p).
__device__ __forceinline__ u64 fixed_weight(const RowState& r, float logit) {
  const double w = exp((static_cast<double>(logit) - static_cast<double>(r.max_logit)) / r.temperature);
  if (w == 0.0 || w < r.min_p) return 0;
  return static_cast<u64>(ldexp(w, r.scale_bits));
}

// Finds the token where the running total of value() over the ranking first reaches the
// threshold that threshold_of(total) gives. Tokens with value 0 are skipped; when rounding leaves
// no crossing, the last token with a value. Returns its rank key. One pass over the row per
// 8-bit digit of the key; every thread of the CTA must call it.
template <typename Value, typename Threshold>
__device__ u64 radix_select(const RowState& r, Value value, Threshold threshold_of, Shared& sh) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  u64 prefix = 0, before = 0, threshold = 0;
  for (int known = 0; known < r.key_bits;) {
    const int bits = min(kDigitBits, r.key_bits - known);
    const int shift = r.key_bits - known - bits;
    for (int i = threadIdx.x; i < kWarps * kBins; i += kThreads) (&sh.hist[0][0])[i] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < r.vocab; i += kThreads) {
      float logit;
      if (!sampleable(r.logits[i], logit)) continue;
      const u64 key = rank_key(logit, i, r.id_bits);
      if (known > 0 && (key >> (shift + bits)) != (prefix >> (shift + bits))) continue;
      const u64 v = value(key, logit);
      if (v != 0) atomicAdd(&sh.hist[warp][(key >> shift) & (kBins - 1)], v);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      u64 sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += sh.hist[w][b];
      sh.bins[b] = sum;
    }
    __syncthreads();
    if (warp == 0) {
      u64 local[kBinsPerLane], lane_sum = 0;
#pragma unroll
      for (int j = 0; j < kBinsPerLane; ++j) lane_sum += local[j] = sh.bins[lane * kBinsPerLane + j];
      u64 inclusive = lane_sum;
      for (int offset = 1; offset < 32; offset <<= 1) {
        const u64 up = __shfl_up_sync(kFull, inclusive, offset);
        if (lane >= offset) inclusive += up;
      }
      if (known == 0) threshold = threshold_of(__shfl_sync(kFull, inclusive, 31));
      int found = -1, last = -1;
      u64 found_before = 0, last_before = 0, run = before + inclusive - lane_sum;
#pragma unroll
      for (int j = 0; j < kBinsPerLane; ++j) {
        if (local[j] == 0) continue;
        if (found < 0 && run + local[j] >= threshold) {
          found = j;
          found_before = run;
        }
        last = j;
        last_before = run;
        run += local[j];
      }
      const unsigned hit = __ballot_sync(kFull, found >= 0), any = __ballot_sync(kFull, last >= 0);
      const int src = hit ? __ffs(hit) - 1 : any ? 31 - __clz(any) : 0;
      const int digit = __shfl_sync(kFull, src * kBinsPerLane + (hit ? found : last), src);
      const u64 digit_before = __shfl_sync(kFull, hit ? found_before : last_before, src);
      if (lane == 0) {
        sh.chosen[0] = any ? static_cast<u64>(digit) : 0;
        sh.chosen[1] = any ? digit_before : before;
        sh.chosen[2] = threshold;
      }
    }
    __syncthreads();
    prefix |= sh.chosen[0] << shift;
    before = sh.chosen[1];
    threshold = sh.chosen[2];
    known += bits;
    __syncthreads();  // sh.chosen is rewritten by the next pass
  }
  return prefix;
}

// The sum of every thread's v, returned to every thread of the CTA.
__device__ u64 block_sum(u64 v, Shared& sh) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFull, v, offset);
  if (threadIdx.x % 32 == 0) sh.warp_sum[threadIdx.x / 32] = v;
  __syncthreads();
  u64 total = 0;
  for (int w = 0; w < kWarps; ++w) total += sh.warp_sum[w];
  __syncthreads();  // sh.warp_sum is rewritten by the next call
  return total;
}

// The state of row p.row (a SampleRow or VerifyRow) and the rank key of the last token kept by
// top-k and top-p (tokens ranked after it are cut); false when nothing in the row is sampleable.
// Every thread of the CTA must call it.
template <typename Row>
__device__ bool prepare_row(const float* logits, int vocab, const Row& p, RowState& r, u64& limit, Shared& sh) {
  const int top_k = p.top_k;
  const double top_p = p.top_p;
  r.logits = logits + static_cast<std::size_t>(p.row) * vocab;
  r.vocab = vocab;
  r.id_bits = vocab > 1 ? 32 - __clz(vocab - 1) : 0;
  r.key_bits = 32 + r.id_bits;
  r.scale_bits = 62 - r.id_bits;
  r.temperature = p.temperature;
  r.min_p = p.min_p;

  // The largest sampleable logit and how many tokens are sampleable.
  float best = -INFINITY;
  int count = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    float logit;
    if (!sampleable(r.logits[i], logit)) continue;
    best = fmaxf(best, logit);
    ++count;
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    best = fmaxf(best, __shfl_xor_sync(kFull, best, offset));
    count += __shfl_xor_sync(kFull, count, offset);
  }
  if (threadIdx.x % 32 == 0) {
    sh.warp_max[threadIdx.x / 32] = best;
    sh.warp_count[threadIdx.x / 32] = count;
  }
  __syncthreads();
  best = -INFINITY;
  count = 0;
  for (int w = 0; w < kWarps; ++w) {
    best = fmaxf(best, sh.warp_max[w]);
    count += sh.warp_count[w];
  }
  if (count == 0) return false;  // the CPU falls back to greedy_token, which answers 0
  r.max_logit = best;

  limit = ~u64{0};
  if (top_k > 0 && top_k < count) {
    const u64 k = static_cast<u64>(top_k);
    limit = radix_select(r, [](u64, float) { return u64{1}; }, [k](u64) { return k; }, sh);
  }
  if (top_p < 1.0) {
    const u64 top_limit = limit;
    limit = radix_select(
        r, [&r, top_limit](u64 key, float logit) { return key <= top_limit ? fixed_weight(r, logit) : u64{0}; },
        [top_p](u64 total) {
          const u64 t = static_cast<u64>(ceil(top_p * static_cast<double>(total)));
          return t < 1 ? u64{1} : t;
        },
        sh);
  }
  return true;
}

// The token where the running total of value() first exceeds u times its total.
template <typename Value>
__device__ std::int32_t draw(const RowState& r, Value value, double u, Shared& sh) {
  const u64 key = radix_select(r, value, [u](u64 total) {
    const u64 t = static_cast<u64>(floor(u * static_cast<double>(total))) + 1;
    return t < total ? t : total;
  }, sh);
  return static_cast<std::int32_t>(key & ((u64{1} << r.id_bits) - 1));
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* logits, int vocab, const SampleRow* rows,
                                                          std::int32_t* out) {
  __shared__ Shared sh;
  const SampleRow p = rows[blockIdx.x];
  RowState r;
  u64 limit;
  if (!prepare_row(logits, vocab, p, r, limit, sh)) {
    if (threadIdx.x == 0) out[blockIdx.x] = 0;
    return;
  }
  auto kept_weight = [&r, limit](u64 key, float logit) { return key <= limit ? fixed_weight(r, logit) : u64{0}; };
  const std::int32_t token = draw(r, kept_weight, p.uniform, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = token;
}

__global__ void __launch_bounds__(kThreads) verify_kernel(const float* logits, int vocab, const VerifyRow* rows,
                                                          const float* draft_q, std::int32_t* out) {
  __shared__ Shared sh;
  const VerifyRow p = rows[blockIdx.x];
  const float* q = draft_q + static_cast<std::size_t>(blockIdx.x) * vocab;
  RowState r;
  u64 limit;
  if (!prepare_row(logits, vocab, p, r, limit, sh)) {
    if (threadIdx.x == 0) out[blockIdx.x] = 0;
    return;
  }
  auto kept_weight = [&r, limit](u64 key, float logit) { return key <= limit ? fixed_weight(r, logit) : u64{0}; };
  u64 kept = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    float logit;
    if (sampleable(r.logits[i], logit)) kept += kept_weight(rank_key(logit, i, r.id_bits), logit);
  }
  const u64 total = block_sum(kept, sh);
  const int d = p.draft;
  float d_logit;
  const u64 d_weight = sampleable(r.logits[d], d_logit) ? kept_weight(rank_key(d_logit, d, r.id_bits), d_logit) : 0;
  const double p_draft = static_cast<double>(d_weight) / static_cast<double>(total);
  const double q_draft = q[d];
  const bool with_q = q_draft > 0.0 && q_draft <= 1.0;
  if (with_q ? p.u_accept * q_draft < p_draft : p.u_accept < p_draft) {
    if (threadIdx.x == 0) out[blockIdx.x] = d;
    return;
  }
  // The residual max(0, p - q) in the weights' fixed point (q scaled by their total); with a
  // point mass, p without the draft.
  const double scale = static_cast<double>(total);
  auto residual = [&r, &kept_weight, q, d, with_q, scale](u64 key, float logit) {
    const int id = static_cast<int>(key & ((u64{1} << r.id_bits) - 1));
    if (id == d) return u64{0};
    const u64 w = kept_weight(key, logit);
    if (!with_q) return w;
    const double qi = q[id] > 0.0f ? static_cast<double>(q[id]) * scale : 0.0;
    return qi >= static_cast<double>(w) ? u64{0} : w - static_cast<u64>(qi);
  };
  u64 left = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    float logit;
    if (sampleable(r.logits[i], logit)) left += residual(rank_key(logit, i, r.id_bits), logit);
  }
  std::int32_t token;
  if (block_sum(left, sh) > 0) {
    token = draw(r, residual, p.u_residual, sh);
  } else if (with_q) {  // rounding (or p == q, where a rejection cannot happen): the CPU's first-ranked token
    token = draw(r, [&kept_weight](u64 key, float logit) { return kept_weight(key, logit) ? u64{1} : u64{0}; }, 0.0,
                 sh);
  } else {
    token = 0;
  }
  if (threadIdx.x == 0) out[blockIdx.x] = token;
}

}  // namespace

cudaError_t sample_rows(const float* logits, int vocab, const SampleRow* rows, int count, std::int32_t* out,
                        cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (vocab <= 0) return cudaErrorInvalidValue;
  sample_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, rows, out);
  return cudaGetLastError();
}

cudaError_t verify_rows(const float* logits, int vocab, const VerifyRow* rows, const float* draft_q, int count,
                        std::int32_t* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (vocab <= 0) return cudaErrorInvalidValue;
  verify_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, rows, draft_q, out);
  return cudaGetLastError();
}

}  // namespace loom::kernels::cuda
