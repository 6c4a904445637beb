// CPU relay attention over a paged KV cache, fp32: the keys of a prefix that several sequences
// share (the same leading blocks) are read once per KV head for all of their queries, then each
// sequence attends to the rest of its context alone (Zhu et al., "RelayAttention", ACL 2024).
//
// Arithmetic: every (row, head) runs an online softmax over its context one cache block at a
// time, in increasing position: per block the scores (dot as in paged_attention, times scale),
// their maximum m_b, then the running maximum M' = max(M, m_b), the running sum and output
// scaled by exp(M - M'), and exp(score - M') per key added with its value row; out = output /
// sum. A block's contribution is the same whether it is read in the shared pass or in the
// sequence's own, so a sequence's result does not depend on whether, or with whom, it shares a
// prefix, nor on the batch or the number of threads (batch invariance, bit for bit). It differs
// from paged_attention's two-pass softmax by rounding only.
#pragma once

#include <cstdint>
#include <span>

#include "loom/kernels/cpu/paged_attention.h"

namespace loom::kernels::cpu {

// Leading full blocks shared by some sequences of the batch: members[i] indexes `seqs`; each
// member's block table starts with block_table[0, num_blocks) and its step's first token is
// at or after num_blocks * block_size (the prefix is already in the cache). num_blocks = 0 or no
// members: nothing is shared.
struct SharedPrefix {
  const std::int32_t* block_table = nullptr;
  int num_blocks = 0;
  std::span<const int> members;
};

// out as paged_attention's (same preconditions), computed as above. Uses the thread pool: the
// shared pass over (KV head, chunk of member rows), each reading a prefix block once for all its
// rows and heads of the group; the own pass over (row, head).
void relay_attention(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const SharedPrefix& prefix,
                     const float* q, int num_heads, float scale, float* out);

}  // namespace loom::kernels::cpu
