// Log-probabilities on the GPU (see logprobs.h): one CTA per row; the maximum, the sum of
// exponentials in double, then the top n by n passes, each taking the best (value, id) below the
// previous pick — no scratch, and the ranking of the CPU's partial sort.
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "loom/kernels/cuda/logprobs.h"

namespace loom::kernels::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

// As the sampler sees a logit: NaN never drawn (-inf), +inf the largest float.
__device__ double value_of(float x) {
  if (isnan(x)) return -INFINITY;
  return static_cast<double>(fminf(x, FLT_MAX));
}

// (value, id) with the better first: larger value, then lower id.
struct Pick {
  double value;
  int id;
};
__device__ bool better(const Pick& a, const Pick& b) {
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

__device__ Pick block_best(Pick p, Pick* warp_best) {
  for (int offset = 16; offset > 0; offset /= 2) {
    Pick other{__shfl_down_sync(kFull, p.value, offset), __shfl_down_sync(kFull, p.id, offset)};
    if (better(other, p)) p = other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_best[warp] = p;
  __syncthreads();
  Pick best = warp_best[0];
  for (int w = 1; w < kWarps; ++w)
    if (better(warp_best[w], best)) best = warp_best[w];
  __syncthreads();
  return best;
}

__device__ double block_sum(double x, double* warp_sum) {
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(kFull, x, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sum[warp] = x;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += warp_sum[w];
  __syncthreads();
  return total;
}

__global__ void __launch_bounds__(kThreads)
    logprobs_kernel(const float* logits, int vocab, const LogprobRow* rows, LogprobResult* out) {
  __shared__ Pick warp_best[kWarps];
  __shared__ double warp_sum[kWarps];
  const LogprobRow r = rows[blockIdx.x];
  const float* row = logits + static_cast<std::size_t>(r.row) * vocab;
  Pick local{-INFINITY, INT32_MAX};
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const Pick p{value_of(row[i]), i};
    if (better(p, local)) local = p;
  }
  const Pick first = block_best(local, warp_best);
  const double top = first.value;
  double sum = 0.0;
  if (isfinite(top))
    for (int i = threadIdx.x; i < vocab; i += kThreads) sum += exp(value_of(row[i]) - top);
  sum = block_sum(sum, warp_sum);
  const double log_total = isfinite(top) ? top + log(sum) : INFINITY;
  LogprobResult& result = out[blockIdx.x];
  if (threadIdx.x == 0)
    result.logprob = r.token >= 0 && r.token < vocab ? value_of(row[r.token]) - log_total : -INFINITY;
  const int n = min(min(max(r.top_n, 0), kMaxTopLogprobs), vocab);
  Pick previous = first;
  for (int k = 0; k < n; ++k) {
    Pick pick = previous;
    if (k > 0) {
      // The best strictly below the previous pick in the ranking.
      Pick best{-INFINITY, INT32_MAX};
      bool found = false;
      for (int i = threadIdx.x; i < vocab; i += kThreads) {
        const Pick p{value_of(row[i]), i};
        if (better(previous, p) && (!found || better(p, best))) {
          best = p;
          found = true;
        }
      }
      // A thread with no candidate offers the sentinel, which every real candidate beats.
      pick = block_best(found ? best : Pick{-INFINITY, INT32_MAX}, warp_best);
    }
    if (threadIdx.x == 0) {
      result.top_ids[k] = pick.id;
      result.top_logprobs[k] = pick.value - log_total;
    }
    previous = pick;
  }
}

}  // namespace

cudaError_t row_logprobs(const float* logits, int vocab, const LogprobRow* rows, int count, LogprobResult* out,
                         cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  logprobs_kernel<<<count, kThreads, 0, stream>>>(logits, vocab, rows, out);
  return cudaGetLastError();
}

}  // namespace loom::kernels::cuda
