// Small row-wise kernels of the Llama block, fp32 on the CPU: RMSNorm, SiLU-and-mul, softmax,
// embedding lookup and residual add. Each row is computed whole by one thread in a fixed order,
// so results are independent of batch composition and thread count.
#pragma once

#include <cstdint>

namespace loom::kernels::cpu {

// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w, for M rows of D. y may alias x.
// The sum of squares is accumulated in double, so the result is within an ulp or two of exact.
void rmsnorm(const float* x, const float* w, int M, int D, float eps, float* y);

// out[t, i] = silu(gate[t, i]) * up[t, i], silu(z) = z / (1 + exp(-z)); out may alias gate or up.
void silu_and_mul(const float* gate, const float* up, std::int64_t n, float* out);

// In-place numerically stable softmax of M rows of length N.
void softmax(float* x, int M, int N);

// out[t, :] = table[ids[t], :]. Returns the index t of the first id outside [0, vocab) without
// writing anything, or -1 when every id is valid.
int embedding(const float* table, int vocab, int D, const std::int32_t* ids, int T, float* out);

// y[i] += x[i].
void add_inplace(float* y, const float* x, std::int64_t n);

}  // namespace loom::kernels::cpu
