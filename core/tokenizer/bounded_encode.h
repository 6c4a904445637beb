// Encoding a prompt that may be far longer than a model can read, without spending seconds on
// it: a 10 MB prompt takes sentencepiece about 10 s, all of it spent before anyone learns that
// the prompt cannot be served, and meanwhile no other request gets a token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace loom {

// A text shown too long by its beginning: its first `prefix_bytes` bytes alone encode to
// `prefix_tokens` tokens, more than the limit asked about.
struct TooManyTokens {
  std::size_t prefix_bytes = 0;
  std::size_t prefix_tokens = 0;
};

// The ids of `text` (with BOS when `add_bos`), as Tokenizer::encode gives them, unless the text
// certainly has more than `max_tokens` tokens. A text longer than a few bytes per allowed token is
// first encoded only up to a space near that length: pieces do not cross the spaces sentencepiece
// splits at, so when that beginning already holds more than `max_tokens` tokens (with a margin
// for any piece that does cross), so does the whole. Otherwise the whole text is encoded.
std::variant<std::vector<std::int32_t>, TooManyTokens> encode_bounded(const Tokenizer& tokenizer, std::string_view text,
                                                                      bool add_bos, std::size_t max_tokens);

}  // namespace loom
