#include "loom/kernels/cpu/elementwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

// sum(row[i]^2) in double: two 4-lane accumulators over steps of 8, a fixed horizontal sum, then
// the scalar tail. The order depends only on D, never on the row's neighbours.
double sum_of_squares(const float* row, int D) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  int i = 0;
  for (; i + 8 <= D; i += 8) {
    const __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(row + i));
    const __m256d x1 = _mm256_cvtps_pd(_mm_loadu_ps(row + i + 4));
    a0 = _mm256_fmadd_pd(x0, x0, a0);
    a1 = _mm256_fmadd_pd(x1, x1, a1);
  }
  const __m256d s = _mm256_add_pd(a0, a1);
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  double sum = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  for (; i < D; ++i) sum += static_cast<double>(row[i]) * row[i];
  return sum;
}

void normalize_row(const float* row, const float* w, int D, float eps, float* out) {
  const float inv = static_cast<float>(1.0 / std::sqrt(sum_of_squares(row, D) / D + eps));
  for (int i = 0; i < D; ++i) out[i] = row[i] * inv * w[i];
}

inline float silu_times(float g, float u) { return g / (1.0f + std::exp(-g)) * u; }

}  // namespace

void rmsnorm(const float* x, const float* w, int M, int D, float eps, float* y) {
  parallel_for(static_cast<std::size_t>(M), 8, [&](std::size_t begin, std::size_t end) {
    for (std::size_t m = begin; m < end; ++m) normalize_row(x + m * D, w, D, eps, y + m * D);
  });
}

void rmsnorm_residual(const float* x, float* residual, const float* w, int M, int D, float eps, float* y) {
  parallel_for(static_cast<std::size_t>(M), 8, [&](std::size_t begin, std::size_t end) {
    for (std::size_t m = begin; m < end; ++m) {
      float* r = residual + m * D;
      const float* xr = x + m * D;
      for (int i = 0; i < D; ++i) r[i] += xr[i];
      normalize_row(r, w, D, eps, y + m * D);
    }
  });
}

void silu_and_mul(const float* gate, const float* up, std::int64_t n, float* out) {
  parallel_for(static_cast<std::size_t>(n), 4096, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = silu_times(gate[i], up[i]);
  });
}

void silu_and_mul_fused(const float* gate_up, int T, int H, float* out) {
  const std::size_t min_rows = static_cast<std::size_t>(std::max(1, 4096 / std::max(H, 1)));
  parallel_for(static_cast<std::size_t>(T), min_rows, [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t) {
      const float* gate = gate_up + t * 2 * H;
      const float* up = gate + H;
      float* o = out + t * H;
      for (int i = 0; i < H; ++i) o[i] = silu_times(gate[i], up[i]);
    }
  });
}

void softmax(float* x, int M, int N) {
  const std::size_t min_rows = static_cast<std::size_t>(std::max(1, 8192 / std::max(N, 1)));
  parallel_for(static_cast<std::size_t>(M), min_rows, [&](std::size_t begin, std::size_t end) {
    for (std::size_t m = begin; m < end; ++m) {
      float* row = x + m * N;
      const float max_value = *std::max_element(row, row + N);
      double sum = 0;
      for (int i = 0; i < N; ++i) sum += row[i] = std::exp(row[i] - max_value);
      const float inv = static_cast<float>(1.0 / sum);
      for (int i = 0; i < N; ++i) row[i] *= inv;
    }
  });
}

int embedding(const float* table, int vocab, int D, const std::int32_t* ids, int T, float* out) {
  for (int t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= vocab) return t;
  for (int t = 0; t < T; ++t)
    std::memcpy(out + static_cast<std::size_t>(t) * D, table + static_cast<std::size_t>(ids[t]) * D, D * sizeof(float));
  return -1;
}

void add_inplace(float* y, const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace loom::kernels::cpu
