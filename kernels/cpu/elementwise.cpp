#include "loom/kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

void rmsnorm(const float* x, const float* w, int M, int D, float eps, float* y) {
  parallel_for(static_cast<std::size_t>(M), 16, [&](std::size_t begin, std::size_t end) {
    for (std::size_t m = begin; m < end; ++m) {
      const float* row = x + m * D;
      double ss = 0;
      for (int i = 0; i < D; ++i) ss += static_cast<double>(row[i]) * row[i];
      const float inv = static_cast<float>(1.0 / std::sqrt(ss / D + eps));
      float* out = y + m * D;
      for (int i = 0; i < D; ++i) out[i] = row[i] * inv * w[i];
    }
  });
}

void silu_and_mul(const float* gate, const float* up, std::int64_t n, float* out) {
  parallel_for(static_cast<std::size_t>(n), 4096, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void softmax(float* x, int M, int N) {
  for (int m = 0; m < M; ++m) {
    float* row = x + static_cast<std::size_t>(m) * N;
    const float max_value = *std::max_element(row, row + N);
    double sum = 0;
    for (int i = 0; i < N; ++i) sum += row[i] = std::exp(row[i] - max_value);
    const float inv = static_cast<float>(1.0 / sum);
    for (int i = 0; i < N; ++i) row[i] *= inv;
  }
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
