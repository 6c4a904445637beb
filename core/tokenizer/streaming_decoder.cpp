#include "core/tokenizer/streaming_decoder.h"

#include <algorithm>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"
#include "loom/error.h"

namespace loom {

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, std::span<const std::int32_t> prompt)
    : tokenizer_(tokenizer) {
  for (std::int32_t id : prompt) {
    tokenizer_.check_id(id);
    if (!tokenizer_.is_control(id)) started_ = true;
  }
  if (tokenizer_.byte_level()) return;  // no window, no anchor: see push_bytes
  // The anchor: the first piece that is neither control nor byte and has visible text (<unk> for
  // Llama). Its text does not depend on what follows, and it ends sentencepiece's "start of
  // text" state (which strips one leading space) and any byte run.
  for (std::int32_t id = 0; id < tokenizer_.vocab_size(); ++id) {
    if (tokenizer_.is_control(id) || tokenizer_.byte_value(id)) continue;
    const std::int32_t one[] = {id};
    std::string text = tokenizer_.decode(one);
    if (!text.empty()) {
      anchor_id_ = id;
      anchor_text_ = std::move(text);
      break;
    }
  }
  if (anchor_id_ < 0) {
    throw ModelError("tokenizer '" + tokenizer_.path().string() +
                     "' has no piece with visible text; cannot stream its output");
  }
  const std::size_t keep = std::min(prompt.size(), kContextTokens);
  context_.assign(prompt.end() - static_cast<std::ptrdiff_t>(keep), prompt.end());
  // A prompt ending inside a character cannot be decoded consistently as a window; see header.
  pending_ = context_;
  if (settled_count() != pending_.size()) context_.clear();
  pending_.clear();
}

std::string StreamingDecoder::push(std::int32_t id) {
  tokenizer_.check_id(id);
  if (tokenizer_.byte_level()) return push_bytes(id);
  pending_.push_back(id);
  return commit(settled_count());
}

std::string StreamingDecoder::push_bytes(std::int32_t id) {
  if (!tokenizer_.is_control(id)) held_bytes_ += tokenizer_.token_bytes(id);
  ++held_bytes_tokens_;
  const std::size_t settled = utf8::settled_prefix(held_bytes_);
  std::string text = utf8::lossy(std::string_view(held_bytes_).substr(0, settled));
  held_bytes_.erase(0, settled);
  if (held_bytes_.empty()) held_bytes_tokens_ = 0;
  return text;
}

std::size_t StreamingDecoder::held_tokens() const {
  return tokenizer_.byte_level() ? held_bytes_tokens_ : pending_.size();
}

std::string StreamingDecoder::finish() {
  if (tokenizer_.byte_level()) {
    std::string text = utf8::lossy(held_bytes_);
    held_bytes_.clear();
    held_bytes_tokens_ = 0;
    return text;
  }
  return commit(pending_.size());
}

std::size_t StreamingDecoder::settled_count() const {
  // Committed tokens end on a character boundary, so only the trailing run of byte tokens (its
  // last 3 bytes at most) can hold an unfinished character.
  const std::size_t n = pending_.size();
  std::string tail;
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, n); ++back) {
    const auto byte = tokenizer_.byte_value(pending_[n - back]);
    if (!byte) break;  // an ordinary token ends the byte run: what follows it is final
    tail.insert(tail.begin(), static_cast<char>(*byte));
  }
  return n - (tail.size() - utf8::settled_prefix(tail));
}

std::string StreamingDecoder::render(std::span<const std::int32_t> ids, bool anchored) const {
  if (!anchored) return tokenizer_.decode(ids);
  std::vector<std::int32_t> with_anchor;
  with_anchor.reserve(ids.size() + 1);
  with_anchor.push_back(anchor_id_);
  with_anchor.insert(with_anchor.end(), ids.begin(), ids.end());
  std::string text = tokenizer_.decode(with_anchor);
  return text.substr(std::min(anchor_text_.size(), text.size()));
}

std::string StreamingDecoder::commit(std::size_t count) {
  if (count == 0) return {};
  std::vector<std::int32_t> window = context_;
  window.insert(window.end(), pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));

  const std::string before = render(context_, started_);
  const std::string after = render(window, started_);
  if (after.compare(0, before.size(), before) != 0) {
    // Cannot happen for sentencepiece (see header); say so loudly rather than emit wrong text.
    throw Error("streaming decoder: the window's text '" + before +
                "' is not a prefix of its text after the new tokens, '" + after + "'");
  }

  for (std::size_t i = 0; i < count; ++i) {
    if (!tokenizer_.is_control(pending_[i])) started_ = true;
  }
  context_ = std::move(window);
  if (context_.size() > kContextTokens) {
    context_.erase(context_.begin(), context_.end() - static_cast<std::ptrdiff_t>(kContextTokens));
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
  return after.substr(before.size());
}

}  // namespace loom
