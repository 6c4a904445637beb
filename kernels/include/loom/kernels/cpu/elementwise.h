// Small row-wise kernels of the Llama block, fp32 on the CPU: RMSNorm (plain and fused with the
// residual add), SiLU-and-mul, softmax, embedding lookup and residual add.
//
// All arrays are row-major and densely packed. Each row is computed whole by one thread in a
// fixed order (parallel_for splits over rows or elements, never inside a row's reduction), so
// a row's result is bit-identical whatever the other rows are and however many threads run.
#pragma once

#include <cstdint>

namespace loom::kernels::cpu {

// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * w, for x, y [M, D] and w [D].
// y may alias x exactly (in place); no other overlap. Threads over rows.
// The sum of squares is accumulated in double (fixed 8-lane order), so the result is within an
// ulp or two of exact and does not depend on D's alignment.
void rmsnorm(const float* x, const float* w, int M, int D, float eps, float* y);

// Fused pre-norm step: residual[m, :] += x[m, :], then y[m, :] = rmsnorm(residual[m, :]).
// x, residual, y [M, D]; w [D]. y may alias x exactly; residual must not overlap x or y.
// Bit-identical to add_inplace(residual, x) followed by rmsnorm(residual, w, ..., y).
void rmsnorm_residual(const float* x, float* residual, const float* w, int M, int D, float eps, float* y);

// out[i] = silu(gate[i]) * up[i] for n elements, silu(z) = z / (1 + exp(-z)).
// out may alias gate or up exactly; no other overlap. Threads over elements.
void silu_and_mul(const float* gate, const float* up, std::int64_t n, float* out);

// Same on one fused projection: gate_up [T, 2H] holds [gate | up] per row; out [T, H].
// out must not overlap gate_up. Bit-identical to silu_and_mul on the split halves.
void silu_and_mul_fused(const float* gate_up, int T, int H, float* out);

// In-place numerically stable softmax of M rows of length N >= 1 (max subtracted first; the
// normalizer is summed in double). Threads over rows.
void softmax(float* x, int M, int N);

// out[t, :] = table[ids[t], :] for table [vocab, D], ids [T], out [T, D]; out must not overlap
// table. Bounds check first: returns the index t of the first id outside [0, vocab) without
// writing anything (the caller reports ids[t]), or -1 when every id is valid and out is written.
int embedding(const float* table, int vocab, int D, const std::int32_t* ids, int T, float* out);

// y[i] += x[i] for n elements; x and y must not overlap. Single-threaded (memory-bound).
void add_inplace(float* y, const float* x, std::int64_t n);

}  // namespace loom::kernels::cpu
