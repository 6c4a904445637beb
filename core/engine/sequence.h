// One sequence being generated: a request's prompt plus its output so far, its sampling state
// and its timings. A request with n > 1 samples becomes n sequences.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sampling/sampler.h"
#include "core/sampling/sequence_rng.h"
#include "core/sampling/sampling_params.h"
#include "core/sampling/logprobs.h"
#include "core/tokenizer/streaming_decoder.h"
#include "loom/block_hash.h"
#include "loom/scheduler.h"

namespace loom {

struct Sequence {
  sdk::SeqId id = 0;
  std::string request_id;
  std::int32_t sample_index = 0;  // 0 .. n-1
  std::int32_t num_samples = 1;   // the request's n
  sdk::SeqState state = sdk::SeqState::waiting;
  std::vector<std::int32_t> tokens;  // prompt followed by output
  std::size_t num_prompt_tokens = 0;
  std::size_t num_computed_tokens = 0;
  std::size_t ever_computed_tokens = 0;  // positions computed at least once: beyond a preemption's reset
  std::size_t max_total_tokens = 0;
  sdk::Tick arrival_step = 0;
  SamplingParams params;
  SequenceRng rng{0};
  std::unique_ptr<StreamingDecoder> decoder;  // when the model has a tokenizer
  std::string text;                           // detokenized output so far
  // Stop strings: the bytes of `text` already searched (none before min_tokens, when they are not
  // looked for), and how many of its last bytes could still begin one (held back from a stream).
  std::size_t stop_searched_bytes = 0;
  std::size_t stop_hold_back = 0;
  std::vector<TokenLogprobs> logprobs;        // per output token, when params.logprobs >= 0
  // Per prompt token after the first, when params.prompt_logprobs >= 0: entry i is token i + 1's,
  // from the logits at position i. Filled as the prompt is computed (never from a cached prefix).
  std::vector<TokenLogprobs> prompt_logprobs;
  double arrival_s = 0, first_token_s = -1;   // seconds since the engine started
  std::size_t num_preemptions = 0;
  std::uint32_t failures_in_a_row = 0;  // plugin calls for it that threw since its last good step
  // This step's offers (engine_step.cpp): the drafter's draft tokens (a greedy sequence about to
  // decode), and what the KV connector can load for a waiting sequence.
  std::vector<std::int32_t> drafts;
  std::vector<float> draft_probabilities;  // empty, or per draft the drafter's distribution (vocab floats)
  std::size_t loadable_from = 0;
  std::size_t num_loadable_tokens = 0;
  // Speculation's own throttle (Engine::adapt_drafts): at most draft_limit drafts are asked for,
  // starting from one and growing by one while every draft is accepted; drafts rejected outright
  // halve it, and at zero the sequence decodes without drafts for draft_pause steps, a pause
  // that doubles each time (up to 64) until a draft is accepted.
  std::size_t draft_limit = 1;
  std::uint32_t draft_pause = 0, draft_backoff = 1;
  bool awaiting_external_kv = false;  // the connector is still fetching its KV: not scheduled this step
  bool external_kv_failed = false;  // a connector load for it failed: it recomputes from now on
  // A request's samples 1..n-1, held by sample 0 until its prompt is computed; then they fork
  // from it and share the prompt's KV blocks (Engine::fork_samples).
  std::vector<Sequence> unforked_samples;

  // Chained hashes of the first num_blocks full blocks of `tokens` (loom/block_hash.h) for a KV
  // connector. Tokens are only ever appended, so each block is hashed once in the sequence's life.
  std::span<const sdk::BlockHash> block_hashes(std::size_t num_blocks, std::size_t block_size) {
    while (hashed_blocks.size() < num_blocks) {
      const std::size_t i = hashed_blocks.size();
      hashed_blocks.push_back(sdk::chain_hash(i == 0 ? sdk::kChainSeed : hashed_blocks.back(),
                                              std::span(tokens).subspan(i * block_size, block_size)));
    }
    return std::span(hashed_blocks).first(num_blocks);
  }
  std::vector<sdk::BlockHash> hashed_blocks;  // block_hashes' cache

  std::size_t num_output_tokens() const { return tokens.size() - num_prompt_tokens; }
  // Prompt log-probabilities are asked for and not all computed yet.
  bool needs_prompt_logprobs() const {
    return params.prompt_logprobs >= 0 && prompt_logprobs.size() + 1 < num_prompt_tokens;
  }
  std::span<const std::int32_t> prompt() const { return {tokens.data(), num_prompt_tokens}; }
  std::span<const std::int32_t> output() const { return {tokens.data() + num_prompt_tokens, num_output_tokens()}; }
};

}  // namespace loom
