#include "core/sampling/logit_penalties.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "loom/error.h"

namespace loom {
namespace {

// Per-thread scratch for sorting token ids: sorting O(prompt + output) ids finds distinct tokens
// and their counts without an O(vocabulary) table to clear on every call. It keeps its capacity,
// so steady-state sampling does not allocate.
std::vector<std::int32_t>& id_scratch() {
  thread_local std::vector<std::int32_t> scratch;
  return scratch;
}

void check_ids(std::span<const std::int32_t> ids, std::size_t vocab, const char* what) {
  for (std::int32_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab) {
      throw RequestError(std::string(what) + " token id " + std::to_string(id) +
                         " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

}  // namespace

void apply_repetition_penalty(std::span<float> logits, float penalty,
                              std::span<const std::int32_t> prompt_tokens,
                              std::span<const std::int32_t> output_tokens) {
  if (penalty == 1.0f) return;
  check_ids(prompt_tokens, logits.size(), "prompt");
  check_ids(output_tokens, logits.size(), "output");
  std::vector<std::int32_t>& ids = id_scratch();
  ids.assign(prompt_tokens.begin(), prompt_tokens.end());
  ids.insert(ids.end(), output_tokens.begin(), output_tokens.end());
  std::sort(ids.begin(), ids.end());
  const auto end = std::unique(ids.begin(), ids.end());
  for (auto it = ids.begin(); it != end; ++it) {
    float& logit = logits[static_cast<std::size_t>(*it)];
    logit = logit > 0.0f ? logit / penalty : logit * penalty;
  }
}

void apply_presence_frequency_penalties(std::span<float> logits, float presence, float frequency,
                                        std::span<const std::int32_t> output_tokens) {
  if (presence == 0.0f && frequency == 0.0f) return;
  check_ids(output_tokens, logits.size(), "output");
  std::vector<std::int32_t>& ids = id_scratch();
  ids.assign(output_tokens.begin(), output_tokens.end());
  std::sort(ids.begin(), ids.end());
  // Walk runs of equal ids: each run is one distinct token and its length is its count.
  for (std::size_t begin = 0; begin < ids.size();) {
    std::size_t end = begin + 1;
    while (end < ids.size() && ids[end] == ids[begin]) ++end;
    const auto count = static_cast<float>(end - begin);
    logits[static_cast<std::size_t>(ids[begin])] -= presence + frequency * count;
    begin = end;
  }
}

void suppress_tokens(std::span<float> logits, std::span<const std::int32_t> token_ids) {
  for (std::int32_t id : token_ids) {
    if (id >= 0 && static_cast<std::size_t>(id) < logits.size()) {
      logits[static_cast<std::size_t>(id)] = -std::numeric_limits<float>::infinity();
    }
  }
}

}  // namespace loom
