// y = x W^T (+ bias): the linear layer, fp32 on the CPU. The hot path of every forward pass.
//
// x is [M, K] row-major, W is [N, K] row-major (a Hugging Face Linear weight, [out, in]), y is
// [M, N]; bias is [N] or null. y must not alias x or W.
//
// Cost: 2*M*N*K flops over N*K*4 bytes of weights; at M = 1 (decoding one sequence) it is
// bound by memory bandwidth, so rows of x are processed four at a time against each loaded row
// of W. Work is split over N (columns) between threads.
//
// Batch invariance: every y[m, n] is accumulated in the same order (two 8-wide FMA chains over
// K in steps of 16, a fixed horizontal sum, then the scalar tail) whatever M is, which rows are
// grouped together, or how many threads run; a row's result is bit-identical in any batch.
#pragma once

namespace loom::kernels::cpu {

void linear(const float* x, int M, int K, const float* W, int N, const float* bias, float* y);

}  // namespace loom::kernels::cpu
