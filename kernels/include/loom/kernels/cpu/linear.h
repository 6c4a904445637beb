// y = x W^T (+ bias): the linear layer, fp32 on the CPU. The hot path of every forward pass.
//
// x is [M, K] row-major, W is [N, K] row-major (a Hugging Face Linear weight, [out, in]), y is
// [M, N]; bias is [N] or null. y must not alias x or W.
//
// Cost: 2*M*N*K flops over N*K*4 bytes of weights; at M = 1 (decoding one sequence) it is
// bound by memory bandwidth. Register tiles of 4 rows of x by 2 rows of W (1 by 4 at M = 1)
// reuse every loaded vector several times; threads split N (columns) in contiguous chunks.
//
// Batch invariance: every y[m, n] is accumulated in the same order (one 8-lane FMA accumulator
// over K in steps of 8, a fixed horizontal sum, the scalar tail in order, then + bias) whatever
// M is, which rows and columns share a tile, or how many threads run; a row's result is
// bit-identical in any batch.
#pragma once

namespace loom::kernels::cpu {

// x [M, K], W [N, K], bias [N] or null, y [M, N]; M, N >= 0, K >= 1. Uses the thread pool.
void linear(const float* x, int M, int K, const float* W, int N, const float* bias, float* y);

}  // namespace loom::kernels::cpu
