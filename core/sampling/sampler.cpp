#include "core/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/sampling/candidate_selection.h"
#include "core/sampling/logit_penalties.h"

namespace loom {
namespace {

// Per-thread candidate list; it keeps its capacity, so steady-state sampling does not allocate.
std::vector<Candidate>& candidate_scratch() {
  thread_local std::vector<Candidate> scratch;
  return scratch;
}

// Collects the tokens that can be sampled (finite after clamping +inf), each with weight 1, and
// returns the largest logit among them, or -inf when there is none.
float collect_candidates(std::span<const float> logits, std::vector<Candidate>& out) {
  out.clear();
  float max_logit = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < logits.size(); ++i) {
    float logit = logits[i];
    if (std::isnan(logit) || logit == -std::numeric_limits<float>::infinity()) continue;
    // A +inf logit means "certain"; clamping keeps (logit - max) finite instead of inf - inf.
    logit = std::min(logit, std::numeric_limits<float>::max());
    out.push_back({logit, static_cast<std::int32_t>(i), 1.0});
    max_logit = std::max(max_logit, logit);
  }
  return max_logit;
}

double total_weight(const std::vector<Candidate>& candidates) {
  double total = 0.0;
  for (const Candidate& c : candidates) total += c.weight;
  return total;
}

// Temperature, top-k, min-p and top-p over `logits`, leaving the kept tokens in `candidates`
// with unnormalised weights (the best token's is 1); false when no logit is finite.
bool keep_candidates(std::span<const float> logits, const SamplingParams& params, std::vector<Candidate>& candidates) {
  const float max_logit = collect_candidates(logits, candidates);
  if (candidates.empty()) return false;

  // Top-k first: it needs only the ranking, and it shrinks the work of everything after it.
  // With every weight 1 (as collected), "the first index where the count exceeds k - 1" is the
  // k-th best, and select_by_mass leaves the k best in front; the sums are exact integers.
  const auto k = static_cast<std::size_t>(params.top_k);
  if (k > 0 && k < candidates.size()) {
    select_by_mass(candidates, static_cast<double>(k - 1), /*inclusive=*/false);
    candidates.resize(k);
  }

  // Softmax numerators relative to the best token, whose weight is exactly 1. Subtracting before
  // dividing keeps tiny temperatures from overflowing; in double, weights underflow late.
  for (Candidate& c : candidates) {
    c.weight = std::exp((static_cast<double>(c.logit) - max_logit) / params.temperature);
  }
  // Tokens whose probability underflowed to zero can never be drawn; dropping them also keeps
  // the draw's rounding fallback from landing on one. min-p's threshold is relative to the best
  // token's weight, 1, so it is a plain cut on weight.
  const double min_weight = params.min_p;
  std::erase_if(candidates, [min_weight](const Candidate& c) {
    return c.weight == 0.0 || c.weight < min_weight;
  });

  if (params.top_p < 1.0) {
    const std::size_t last = select_by_mass(candidates, params.top_p * total_weight(candidates),
                                            /*inclusive=*/true);
    candidates.resize(last + 1);
  }
  return true;
}

}  // namespace

std::int32_t sample_with_uniform(std::span<const float> logits, const SamplingParams& params, double u) {
  if (params.temperature == 0.0) return greedy_token(logits);
  std::vector<Candidate>& candidates = candidate_scratch();
  if (!keep_candidates(logits, params, candidates)) return greedy_token(logits);
  const std::size_t chosen =
      select_by_mass(candidates, u * total_weight(candidates), /*inclusive=*/false);
  return candidates[chosen].id;
}

void sampling_distribution(std::span<const float> logits, const SamplingParams& params,
                           std::vector<TokenProbability>& out) {
  out.clear();
  if (params.temperature == 0.0) return;
  std::vector<Candidate>& candidates = candidate_scratch();
  if (!keep_candidates(logits, params, candidates)) return;
  std::sort(candidates.begin(), candidates.end(), ranks_before);
  const double total = total_weight(candidates);
  for (const Candidate& c : candidates) out.push_back({c.id, c.weight / total});
}

std::int32_t greedy_token(std::span<const float> logits) {
  std::int32_t best = 0;
  float best_logit = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < logits.size(); ++i) {
    // Strictly greater keeps the lowest id on ties; NaN compares false and is skipped.
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<std::int32_t>(i);
    }
  }
  return best;
}

void apply_penalties(std::span<float> logits, const SamplingParams& params, std::span<const std::int32_t> prompt_tokens,
                     std::span<const std::int32_t> output_tokens, std::span<const std::int32_t> eos_ids) {
  apply_repetition_penalty(logits, static_cast<float>(params.repetition_penalty), prompt_tokens,
                           output_tokens);
  apply_presence_frequency_penalties(logits, static_cast<float>(params.presence_penalty),
                                     static_cast<float>(params.frequency_penalty), output_tokens);
  if (output_tokens.size() < static_cast<std::size_t>(std::max(params.min_tokens, 0))) {
    // With ignore_eos the EOS token is not a stop token, so min_tokens has nothing to hold back.
    if (!params.ignore_eos) suppress_tokens(logits, eos_ids);
    suppress_tokens(logits, params.stop_token_ids);
  }
}

std::int32_t sample_token(std::span<float> logits, const SamplingParams& params,
                          std::span<const std::int32_t> prompt_tokens,
                          std::span<const std::int32_t> output_tokens,
                          std::span<const std::int32_t> eos_ids, SequenceRng& rng) {
  apply_penalties(logits, params, prompt_tokens, output_tokens, eos_ids);
  if (params.temperature == 0.0) return greedy_token(logits);
  return sample_with_uniform(logits, params, rng.next_uniform());  // exactly one draw per token
}

}  // namespace loom
