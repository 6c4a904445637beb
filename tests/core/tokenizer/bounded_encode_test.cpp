// encode_bounded: equal to a whole encode whenever it encodes, and claims "too many tokens" only
// for texts whose whole encoding really is longer than the limit.
#include "core/tokenizer/bounded_encode.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace loom {
namespace {

using tokenizer_test::llama2_tokenizer;

// Words, runs of spaces, punctuation, newlines and multi-byte characters, to `bytes` long.
std::string random_text(std::mt19937& rng, std::size_t bytes) {
  static const char* const kParts[] = {"the",  "cat",   " ",  "  ",        "      ", ".", ",", "\n",
                                       "Once", "upon",  "a",  "time",      "你好",   "😀", "é", "internationalization",
                                       "x",    "12345", "()", "          "};
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kParts) - 1);
  std::string text;
  while (text.size() < bytes) {
    text += kParts[pick(rng)];
    if (pick(rng) % 2) text += ' ';
  }
  return text;
}

TEST(BoundedEncode, EncodesLikeTheTokenizerOrProvesTheTextTooLongOverRandomTextsAndLimits) {
  const Tokenizer& tokenizer = llama2_tokenizer();
  std::mt19937 rng(7);
  int refused = 0, encoded = 0;
  for (std::size_t limit : {1u, 4u, 20u, 100u, 400u}) {
    for (std::size_t bytes : {1u, 50u, 300u, 1000u, 3000u, 9000u}) {
      for (int trial = 0; trial < 6; ++trial) {
        const std::string text = random_text(rng, bytes);
        const std::vector<std::int32_t> whole = tokenizer.encode(text, true);
        auto result = encode_bounded(tokenizer, text, true, limit);
        if (const auto* too_many = std::get_if<TooManyTokens>(&result)) {
          ++refused;
          EXPECT_GT(whole.size(), limit) << "limit " << limit << ", " << bytes << " bytes";
          EXPECT_GT(too_many->prefix_tokens, limit);
          EXPECT_LT(too_many->prefix_bytes, text.size());
        } else {
          ++encoded;
          EXPECT_EQ(std::get<std::vector<std::int32_t>>(result), whole) << "limit " << limit << ", " << bytes;
        }
      }
    }
  }
  EXPECT_GT(refused, 20) << "long texts are refused by their beginning";
  EXPECT_GT(encoded, 20);
}

TEST(BoundedEncode, ATextOfLongPiecesBeyondTheProbeIsEncodedWhole) {
  // Runs of spaces are long pieces: 20 000 bytes in well under 2 000 tokens, so the beginning
  // proves nothing and the whole text is encoded.
  const std::string spaces = "a" + std::string(20000, ' ') + "b";
  const std::vector<std::int32_t> whole = llama2_tokenizer().encode(spaces, false);
  ASSERT_LT(whole.size(), 2000u);
  auto result = encode_bounded(llama2_tokenizer(), spaces, false, 2000);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::int32_t>>(result));
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(result), whole);
}

}  // namespace
}  // namespace loom
