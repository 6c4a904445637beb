// The vector arithmetic the CPU attention kernels share, so that paged and relay attention
// compute a score or add a value row the same way (one fixed order for every row).
#pragma once

#include <immintrin.h>

namespace loom::kernels::cpu::attention_math {

// dot(a, b) over d floats: one 8-lane FMA accumulator, a fixed horizontal sum, the tail in order.
inline float dot(const float* a, const float* b, int d) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
  float s = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

// out[i] += w * v[i] over d floats, vectorised; the same order for every row.
inline void axpy(float w, const float* v, float* out, int d) {
  const __m256 weight = _mm256_set1_ps(w);
  int i = 0;
  for (; i + 8 <= d; i += 8)
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(weight, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
  for (; i < d; ++i) out[i] += w * v[i];
}

}  // namespace loom::kernels::cpu::attention_math
