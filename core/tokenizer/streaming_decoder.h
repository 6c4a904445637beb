// Streaming detokenization: turns one sequence's output token ids, one at a time, into text that
// can be sent to the client at once and never needs taking back.
//
// The contract: the concatenation of everything push() and finish() return equals
// Tokenizer::decode(prompt + output) with the text of decode(prompt) removed from its front
// (with no prompt: decode(output)). In particular
//  - the first output piece keeps its leading space after a non-empty prompt, as a full decode
//    would, and loses it where a full decode would (at the very start of the text);
//  - a character spelled by several byte-fallback tokens (<0xE4> <0xBD> <0xA0>) comes out whole
//    once its last byte arrives; push() never returns part of a UTF-8 character, nor the U+FFFD
//    that sentencepiece shows for an incomplete one, while more bytes could still complete it;
//  - finish() flushes bytes still held (an incomplete character at the end becomes U+FFFD, as in
//    decode()).
//
// How: like vLLM and HF, each step decodes a short window (the last few committed tokens plus
// the new ones) and emits the text beyond the window's previous decode. Tokens are committed
// only at character boundaries, and once any visible token has been seen the window is decoded
// behind a fixed "anchor" piece, so sentencepiece never strips a leading space mid-stream. The
// work per token is bounded by the window (at most kContextTokens + 4 tokens), not the length.
//
// A byte-level BPE tokenizer needs no window: its decode is the concatenation of the tokens'
// bytes, so the decoder keeps the bytes of an unfinished character and emits the rest.
//
// One decoder per sequence; it borrows the Tokenizer, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace loom {

class Tokenizer;

class StreamingDecoder {
 public:
  // Committed tokens kept to decode the window against.
  static constexpr std::size_t kContextTokens = 4;

  // `prompt` is the text already shown (it may be empty). Its ids are checked (RequestError).
  // A prompt is expected to end on a character boundary, as encode() output always does; if it
  // ends inside a byte-spelled character, that character stays broken (U+FFFD) as in
  // decode(prompt) and later bytes are not joined to it.
  explicit StreamingDecoder(const Tokenizer& tokenizer, std::span<const std::int32_t> prompt = {});

  // Feeds the next output id; returns the text that became final (possibly empty). Throws
  // loom::RequestError for an id out of range, leaving the decoder unchanged.
  std::string push(std::int32_t id);

  // Flushes the held tokens at the end of the sequence. The decoder may be pushed again after.
  std::string finish();

  // How many pushed tokens wait for the rest of their character (0 to 3).
  std::size_t held_tokens() const;

 private:
  // How many leading pending tokens have final text: all but a trailing incomplete character.
  std::size_t settled_count() const;
  std::string commit(std::size_t count);
  std::string render(std::span<const std::int32_t> ids, bool anchored) const;
  std::string push_bytes(std::int32_t id);

  const Tokenizer& tokenizer_;
  std::int32_t anchor_id_ = -1;
  std::string anchor_text_;
  // True once a non-control token was committed: from then on no leading space is stripped.
  bool started_ = false;
  std::vector<std::int32_t> context_;
  std::vector<std::int32_t> pending_;
  // Byte-level tokenizers: the bytes of an unfinished character, and how many tokens brought them.
  std::string held_bytes_;
  std::size_t held_bytes_tokens_ = 0;
};

}  // namespace loom
