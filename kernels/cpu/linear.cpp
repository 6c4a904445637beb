#include "loom/kernels/cpu/linear.h"

#include <immintrin.h>

#include <algorithm>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

// Fixed-order horizontal sum of two accumulators.
inline float reduce(__m256 a, __m256 b) {
  __m256 s = _mm256_add_ps(a, b);
  __m128 lo = _mm256_castps256_ps128(s), hi = _mm256_extractf128_ps(s, 1);
  __m128 q = _mm_add_ps(lo, hi);                 // 4 lanes
  __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));  // 2 lanes
  __m128 r = _mm_add_ss(d, _mm_shuffle_ps(d, d, 1));
  return _mm_cvtss_f32(r);
}

// Dot products of R rows of x with one row of W; identical arithmetic per row for any R.
template <int R>
inline void dot_rows(const float* const* xs, const float* w, int K, float* out) {
  __m256 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    __m256 w0 = _mm256_loadu_ps(w + k), w1 = _mm256_loadu_ps(w + k + 8);
    for (int r = 0; r < R; ++r) {
      a0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[r] + k), w0, a0[r]);
      a1[r] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[r] + k + 8), w1, a1[r]);
    }
  }
  if (k + 8 <= K) {
    __m256 w0 = _mm256_loadu_ps(w + k);
    for (int r = 0; r < R; ++r) a0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[r] + k), w0, a0[r]);
    k += 8;
  }
  for (int r = 0; r < R; ++r) {
    float s = reduce(a0[r], a1[r]);
    for (int t = k; t < K; ++t) s += xs[r][t] * w[t];
    out[r] = s;
  }
}

}  // namespace

void linear(const float* x, int M, int K, const float* W, int N, const float* bias, float* y) {
  // Columns per thread chunk: enough weight rows to amortize the dispatch.
  const std::size_t min_columns = static_cast<std::size_t>(std::max(1, 16384 / std::max(K, 1)));
  // Each weight row is loaded once and used for every row of x while it is in L1.
  parallel_for(static_cast<std::size_t>(N), min_columns, [&](std::size_t n_begin, std::size_t n_end) {
    for (std::size_t n = n_begin; n < n_end; ++n) {
      const float* w = W + n * static_cast<std::size_t>(K);
      const float b = bias ? bias[n] : 0.0f;
      for (int m = 0; m < M; m += 4) {
        const int rows = std::min(4, M - m);
        const float* xs[4] = {x + static_cast<std::size_t>(m) * K, nullptr, nullptr, nullptr};
        for (int r = 1; r < rows; ++r) xs[r] = xs[0] + static_cast<std::size_t>(r) * K;
        float out[4];
        switch (rows) {
          case 4: dot_rows<4>(xs, w, K, out); break;
          case 3: dot_rows<3>(xs, w, K, out); break;
          case 2: dot_rows<2>(xs, w, K, out); break;
          default: dot_rows<1>(xs, w, K, out); break;
        }
        for (int r = 0; r < rows; ++r) y[static_cast<std::size_t>(m + r) * N + n] = out[r] + b;
      }
    }
  });
}

}  // namespace loom::kernels::cpu
