#include "loom/kernels/cpu/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace loom::kernels::cpu {

void route_top_k(const float* logits, int T, int E, int k, bool renormalize, std::int32_t* expert_ids, float* weights) {
  std::vector<double> probs(E);
  std::vector<int> order(E);
  for (int t = 0; t < T; ++t) {
    const float* row = logits + static_cast<std::size_t>(t) * E;
    const double max_logit = *std::max_element(row, row + E);
    double sum = 0;
    for (int e = 0; e < E; ++e) sum += probs[e] = std::exp(static_cast<double>(row[e]) - max_logit);
    for (double& p : probs) p /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int a, int b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
    double top_sum = 0;
    for (int j = 0; j < k; ++j) top_sum += probs[order[j]];
    for (int j = 0; j < k; ++j) {
      expert_ids[t * k + j] = order[j];
      weights[t * k + j] = static_cast<float>(renormalize ? probs[order[j]] / top_sum : probs[order[j]]);
    }
  }
}

}  // namespace loom::kernels::cpu
