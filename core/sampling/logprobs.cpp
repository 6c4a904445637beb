#include "core/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace loom {

TokenLogprobs token_logprobs(std::span<const float> logits, std::int32_t token, int top_n) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  // As the sampler sees a logit: NaN is never drawn, +inf is the largest float.
  auto value = [&](std::size_t i) {
    return std::isnan(logits[i]) ? kNegInf
                                 : static_cast<double>(std::min(logits[i], std::numeric_limits<float>::max()));
  };
  double max = kNegInf;
  for (std::size_t i = 0; i < logits.size(); ++i) max = std::max(max, value(i));
  double sum = 0.0;
  if (std::isfinite(max))
    for (std::size_t i = 0; i < logits.size(); ++i) sum += std::exp(value(i) - max);
  const double log_total = std::isfinite(max) ? max + std::log(sum) : std::numeric_limits<double>::infinity();
  auto logprob = [&](std::size_t i) { return value(i) - log_total; };

  TokenLogprobs out;
  out.token = token;
  out.logprob = token >= 0 && static_cast<std::size_t>(token) < logits.size() ? logprob(token) : kNegInf;
  const std::size_t n =
      std::min<std::size_t>(static_cast<std::size_t>(std::clamp(top_n, 0, kMaxLogprobs)), logits.size());
  if (n == 0) return out;  // no ranking to make (and no vocabulary-sized scratch per token)
  std::vector<std::int32_t> ids(logits.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                    [&](std::int32_t a, std::int32_t b) {
                      const double va = value(a), vb = value(b);
                      return va > vb || (va == vb && a < b);
                    });
  for (std::size_t i = 0; i < n; ++i) out.top.emplace_back(ids[i], logprob(ids[i]));
  return out;
}

}  // namespace loom
