// Mixture-of-experts routing: which experts each token goes to, and with what weight.
#pragma once

#include <cstdint>

namespace loom::kernels::cpu {

// For each of T tokens with router logits [T, E]: probabilities = softmax(logits); the k most
// probable experts (ties: lower index first) in decreasing probability go to expert_ids [T, k]
// with their probabilities in weights [T, k]. With `renormalize` (Mixtral; Qwen-MoE's
// norm_topk_prob) the k weights are divided by their sum.
void route_top_k(const float* logits, int T, int E, int k, bool renormalize, std::int32_t* expert_ids, float* weights);

}  // namespace loom::kernels::cpu
