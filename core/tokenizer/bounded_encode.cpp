#include "core/tokenizer/bounded_encode.h"

namespace loom {

namespace {

// Bytes of text looked at per allowed token before the whole is encoded: English averages about
// four bytes a token, so a beginning this long holds about twice the limit.
constexpr std::size_t kProbeBytesPerToken = 8;
// Tokens the cut at the probe's end may add, or remove from the whole's count.
constexpr std::size_t kCutMargin = 16;

}  // namespace

std::variant<std::vector<std::int32_t>, TooManyTokens> encode_bounded(const Tokenizer& tokenizer, std::string_view text,
                                                                      bool add_bos, std::size_t max_tokens) {
  const std::size_t probe = (max_tokens + kCutMargin) * kProbeBytesPerToken;
  if (text.size() > 2 * probe) {
    std::size_t cut = text.rfind(' ', probe);
    if (cut == std::string_view::npos || cut == 0) cut = probe;
    // Never inside a UTF-8 character: back up over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    const std::size_t tokens = tokenizer.encode(text.substr(0, cut), add_bos).size();
    if (tokens > max_tokens + kCutMargin) return TooManyTokens{cut, tokens};
  }
  return tokenizer.encode(text, add_bos);
}

}  // namespace loom
