#include "tools/loom/random_requests.h"

#include <random>

#include "loom/error.h"

namespace loom::cli {

Range parse_range(const std::string& text, const char* option) {
  Range r;
  try {
    auto colon = text.find(':');
    r.min = std::stoi(text.substr(0, colon));
    r.max = colon == std::string::npos ? r.min : std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    throw UsageError(std::string(option) + " " + text + ": expected N or MIN:MAX");
  }
  if (r.min < 1 || r.max < r.min) throw UsageError(std::string(option) + " " + text + ": need 1 <= MIN <= MAX");
  return r;
}

std::vector<Request> random_requests(int count, Range input, Range output, int vocab, std::uint64_t seed,
                                     const SamplingParams& sampling) {
  std::mt19937_64 rng(seed);
  std::vector<Request> requests;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = "bench-" + std::to_string(i);
    r.params = sampling;
    const int in = std::uniform_int_distribution<int>(input.min, input.max)(rng);
    for (int t = 0; t < in; ++t) r.prompt_token_ids.push_back(std::uniform_int_distribution<int>(3, vocab - 1)(rng));
    r.params.max_tokens = std::uniform_int_distribution<int>(output.min, output.max)(rng);
    r.params.ignore_eos = true;
    requests.push_back(std::move(r));
  }
  return requests;
}

}  // namespace loom::cli
