// A prefix the attention backend names (relay attention's system prompt), computed once when the
// engine starts and held for its lifetime: an internal request computes it like any prompt, then
// a sequence that never runs takes its whole blocks from the prefix cache and never releases
// them, so no eviction can take them and every request that starts with the prefix maps to them.
#include "core/engine/engine.h"
#include "core/tokenizer/bounded_encode.h"

namespace loom {

void Engine::pin_prefix(bool prefix_caching) {
  const sdk::PinnedPrefix wanted = plugins_.attention->pinned_prefix();
  if (wanted.token_ids.empty() && wanted.text.empty()) return;
  const std::string& by = wanted.named_by;
  if (!prefix_caching)
    throw ConfigError(by + ": a system prompt is kept in the prefix cache; set [kv] prefix_caching = true");
  std::vector<std::int32_t> ids = wanted.token_ids;
  if (ids.empty()) {
    if (!tokenizer_)
      throw ConfigError(by +
                        ": the model has no tokenizer to read the text with: give the prompt's token ids "
                        "(system_prompt_ids), or set [model] tokenizer");
    auto encoded = encode_bounded(*tokenizer_, wanted.text, /*add_bos=*/true, max_model_len_ - 1);
    if (std::holds_alternative<TooManyTokens>(encoded))
      throw ConfigError(by + ": the system prompt is longer than the model's context of " +
                        std::to_string(max_model_len_) + " tokens");
    ids = std::move(std::get<std::vector<std::int32_t>>(encoded));
  }
  const std::size_t block_size = plugins_.allocator->block_size();
  if (ids.size() < block_size)
    throw ConfigError(by + ": the system prompt is " + std::to_string(ids.size()) +
                      " tokens, less than one KV block of " + std::to_string(block_size) +
                      ": nothing to keep; give a longer one, or none");
  if (ids.size() >= max_model_len_)
    throw ConfigError(by + ": the system prompt is " + std::to_string(ids.size()) + " tokens; the model's context is " +
                      std::to_string(max_model_len_));
  const auto vocab = static_cast<std::int32_t>(model_->config().vocab_size);
  for (std::int32_t id : ids)
    if (id < 0 || id >= vocab)
      throw ConfigError(by + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(vocab) + ")");

  // Computed as a one-token request whose counts are not the user's.
  const EngineStats before = stats_;
  Request request;
  request.id = "(system prompt)";
  request.prompt_token_ids = ids;
  request.params.max_tokens = 1;
  request.params.ignore_eos = true;
  request.params.temperature = 0.0f;
  submit(request);
  while (has_unfinished())
    for (const RequestResult& result : step())
      if (result.finish_reason == "error")
        throw DeviceError(by + ": computing the system prompt failed: " + result.error);
  stats_ = before;

  pinned_seq_ = next_id_++;
  const std::size_t whole = ids.size() / block_size * block_size;
  const std::size_t held = plugins_.allocator->acquire_cached_prefix(pinned_seq_, ids, tick_);
  if (held < whole)
    throw Error(by + ": the prefix cache kept " + std::to_string(held) + " of the system prompt's " +
                std::to_string(whole) + " tokens in whole blocks (the pool is too small to hold it?)");
  plugins_.attention->on_prefix_pinned(plugins_.allocator->block_table(pinned_seq_));
}

}  // namespace loom
