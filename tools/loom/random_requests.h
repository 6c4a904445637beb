// Benchmark requests of random token ids, with lengths drawn from ranges: what `loom bench` runs,
// and its --report experiments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/requests/request.h"

namespace loom::cli {

struct Range {
  int min = 0, max = 0;
};

// "128" or "100:1024"; a UsageError naming `option` otherwise.
Range parse_range(const std::string& text, const char* option);

// `count` prompts of ids drawn from [3, vocab) with lengths drawn from `input`; each request samples
// as `sampling` says (greedy by default), with max_tokens drawn from `output` and EOS ignored.
std::vector<Request> random_requests(int count, Range input, Range output, int vocab, std::uint64_t seed,
                                     const SamplingParams& sampling);

}  // namespace loom::cli
