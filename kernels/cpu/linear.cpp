#include "loom/kernels/cpu/linear.h"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

// Fixed-order horizontal sum of one 8-lane accumulator.
inline float reduce(__m256 s) {
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));  // 4 lanes
  const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));                                  // 2 lanes
  return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
}

// A register tile: R rows of x against C rows of W. Every output element gets the same
// arithmetic whatever R and C are: one 8-lane FMA accumulator over k in steps of 8, the fixed
// horizontal sum, the scalar tail k = 8*floor(K/8) .. K-1 in order, then the bias. That is what
// makes a row's result independent of how rows and columns are grouped into tiles.
template <int R, int C>
inline void tile(const float* x, int K, const float* w, const float* bias, int N, float* y) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  const std::size_t ld = static_cast<std::size_t>(K);
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = _mm256_loadu_ps(w + c * ld + k);
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * ld + k);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float s = reduce(acc[r][c]);
      for (int t = k; t < K; ++t) s += x[r * ld + t] * w[c * ld + t];
      y[static_cast<std::size_t>(r) * N + c] = bias ? s + bias[c] : s;
    }
  }
}

// Widest column tile per row-tile height, keeping R*C accumulators + C weights + 1 x in the
// 16 ymm registers.
constexpr int kMaxRows = 4;
constexpr int kColsForOneRow = 4;
constexpr int kColsForManyRows = 2;

template <int R>
void row_tile(const float* x, int K, const float* W, const float* bias, int N, float* y, std::size_t n_begin,
              std::size_t n_end) {
  constexpr int C = R == 1 ? kColsForOneRow : kColsForManyRows;
  const std::size_t ld = static_cast<std::size_t>(K);
  std::size_t n = n_begin;
  for (; n + C <= n_end; n += C) tile<R, C>(x, K, W + n * ld, bias ? bias + n : nullptr, N, y + n);
  for (; n < n_end; ++n) tile<R, 1>(x, K, W + n * ld, bias ? bias + n : nullptr, N, y + n);
}

void rows_tile(int rows, const float* x, int K, const float* W, const float* bias, int N, float* y,
               std::size_t n_begin, std::size_t n_end) {
  switch (rows) {
    case 4: row_tile<4>(x, K, W, bias, N, y, n_begin, n_end); break;
    case 3: row_tile<3>(x, K, W, bias, N, y, n_begin, n_end); break;
    case 2: row_tile<2>(x, K, W, bias, N, y, n_begin, n_end); break;
    default: row_tile<1>(x, K, W, bias, N, y, n_begin, n_end); break;
  }
}

}  // namespace

void linear(const float* x, int M, int K, const float* W, int N, const float* bias, float* y) {
  if (M <= 0 || N <= 0) return;
  const std::size_t ld = static_cast<std::size_t>(K);
  // Columns per chunk: enough weight bytes (>= 64 KiB) to amortize waking a thread.
  const std::size_t min_columns = static_cast<std::size_t>(std::max(1, 16384 / std::max(K, 1)));
  // Rows of x per pass over a strip of W: as many as stay in L2 (~512 KiB) while the strip's
  // weight rows stream through; W is read from memory once per pass.
  const int rows_per_pass = std::max(kMaxRows, static_cast<int>((512 * 1024 / 4) / std::max<std::size_t>(ld, 1)) / kMaxRows * kMaxRows);
  // Strip of weight rows reused across the pass's row tiles while it sits in L1/L2 (~32 KiB).
  const std::size_t strip = std::max<std::size_t>(kColsForOneRow, (32 * 1024 / 4) / std::max<std::size_t>(ld, 1));
  parallel_for(static_cast<std::size_t>(N), min_columns, [&](std::size_t n_begin, std::size_t n_end) {
    for (int m0 = 0; m0 < M; m0 += rows_per_pass) {
      const int m1 = std::min(M, m0 + rows_per_pass);
      for (std::size_t s0 = n_begin; s0 < n_end; s0 += strip) {
        const std::size_t s1 = std::min(n_end, s0 + strip);
        for (int m = m0; m < m1; m += kMaxRows) {
          const int rows = std::min(kMaxRows, m1 - m);
          rows_tile(rows, x + static_cast<std::size_t>(m) * ld, K, W, bias, N, y + static_cast<std::size_t>(m) * N, s0, s1);
        }
      }
    }
  });
}

}  // namespace loom::kernels::cpu
