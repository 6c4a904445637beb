#include "core/tokenizer/streaming_decoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "loom/error.h"
#include "support/expect_error.h"
#include "tokenizer_test_util.h"

namespace loom {
namespace {

using tokenizer_test::llama2_tokenizer;
using Ids = std::vector<std::int32_t>;

const std::string kReplacement = "\xEF\xBF\xBD";

// Strict UTF-8 check (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return false;
    i += len;
  }
  return true;
}

struct Streamed {
  std::vector<std::string> chunks;  // one per push, then the finish() chunk
  std::string text;
};

Streamed stream(const Tokenizer& tok, const Ids& output, const Ids& prompt = {}) {
  StreamingDecoder decoder(tok, prompt);
  Streamed s;
  for (std::int32_t id : output) {
    s.chunks.push_back(decoder.push(id));
    s.text += s.chunks.back();
  }
  s.chunks.push_back(decoder.finish());
  s.text += s.chunks.back();
  EXPECT_EQ(decoder.held_tokens(), 0u);
  return s;
}

TEST(StreamingDecoder, HelloWorldChineseEmoji) {
  const Tokenizer& tok = llama2_tokenizer();
  const Ids ids = {15043, 29892, 3186, 29991, 29871, 30919, 31076, 29871, 243, 162, 155, 131};
  const Streamed s = stream(tok, ids);
  EXPECT_EQ(s.text, tok.decode(ids));
  EXPECT_EQ(s.text, "Hello, world! \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80");
  for (std::size_t i = 0; i < s.chunks.size(); ++i) {
    EXPECT_TRUE(is_valid_utf8(s.chunks[i])) << "chunk " << i;
    EXPECT_EQ(s.chunks[i].find(kReplacement), std::string::npos) << "chunk " << i;
  }
  // The emoji's four byte tokens: nothing until the last, then the whole character.
  EXPECT_EQ(s.chunks[8], "");
  EXPECT_EQ(s.chunks[9], "");
  EXPECT_EQ(s.chunks[10], "");
  EXPECT_EQ(s.chunks[11], "\xF0\x9F\x98\x80");
  EXPECT_EQ(s.chunks[0], "Hello") << "no leading space at the start of the text";
}

TEST(StreamingDecoder, ByteSpelledCharacterComesOutWhole) {
  const Tokenizer& tok = llama2_tokenizer();
  // 你 spelled as bytes <0xE4> <0xBD> <0xA0> (ids are byte + 3).
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.push(0xE4 + 3), "");
  EXPECT_EQ(decoder.held_tokens(), 1u);
  EXPECT_EQ(decoder.push(0xBD + 3), "");
  EXPECT_EQ(decoder.push(0xA0 + 3), "\xE4\xBD\xA0");
  EXPECT_EQ(decoder.held_tokens(), 0u);
  EXPECT_EQ(decoder.finish(), "");
}

TEST(StreamingDecoder, IncompleteTailIsFlushedAtFinish) {
  const Tokenizer& tok = llama2_tokenizer();
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.push(15043), "Hello");
  EXPECT_EQ(decoder.push(243), "");
  EXPECT_EQ(decoder.push(162), "");
  EXPECT_EQ(decoder.finish(), kReplacement + kReplacement);
  EXPECT_EQ(tok.decode(Ids{15043, 243, 162}), "Hello" + kReplacement + kReplacement);
}

TEST(StreamingDecoder, BrokenCharacterIsReleasedByTheNextPiece) {
  const Tokenizer& tok = llama2_tokenizer();
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.push(243), "");
  EXPECT_EQ(decoder.push(15043), kReplacement + " Hello");
}

TEST(StreamingDecoder, FirstOutputKeepsItsSpaceAfterPrompt) {
  const Tokenizer& tok = llama2_tokenizer();
  const Ids prompt = tok.encode("Once upon a time", true);
  const Ids output = tok.encode("there was a girl", false);
  const Streamed s = stream(tok, output, prompt);
  EXPECT_EQ(s.chunks[0], " there");
  Ids all = prompt;
  all.insert(all.end(), output.begin(), output.end());
  EXPECT_EQ(tok.decode(prompt) + s.text, tok.decode(all));
}

TEST(StreamingDecoder, BosOnlyPromptStripsLeadingSpace) {
  const Tokenizer& tok = llama2_tokenizer();
  const Streamed s = stream(tok, {15043, 3186}, {1});
  EXPECT_EQ(s.text, "Hello world");
}

TEST(StreamingDecoder, ControlTokensAndLoneSpacePieces) {
  const Tokenizer& tok = llama2_tokenizer();
  for (const Ids& ids : {Ids{1, 1, 1, 1, 1, 1, 15043}, Ids{29871, 29871, 15043}, Ids{2, 29871, 2, 15043},
                         Ids{0, 15043}, Ids{13, 15043}, Ids{1, 2, 1, 2, 1, 2, 29871, 1, 2, 1, 2, 1, 2, 3186}}) {
    EXPECT_EQ(stream(tok, ids).text, tok.decode(ids));
  }
}

TEST(StreamingDecoder, InvalidIdIsRequestErrorAndChangesNothing) {
  const Tokenizer& tok = llama2_tokenizer();
  StreamingDecoder decoder(tok);
  EXPECT_EQ(decoder.push(243), "");
  const std::string msg = testing::message_of<RequestError>([&] { decoder.push(32000); });
  EXPECT_CONTAINS(msg, "32000");
  EXPECT_EQ(decoder.held_tokens(), 1u);
  EXPECT_EQ(decoder.push(162), "");
  EXPECT_EQ(decoder.push(155), "");
  EXPECT_EQ(decoder.push(131), "\xF0\x9F\x98\x80");
  testing::message_of<RequestError>([&] { StreamingDecoder bad(tok, Ids{1, -5}); });
}

// Random ids, weighted towards the hard cases: byte tokens (valid and invalid UTF-8 runs),
// control tokens, <unk>, the lone-space piece and ordinary pieces. `control_percent` of the ids
// are drawn from <unk>, BOS and EOS alone, to reach runs longer than the decoder's window.
Ids random_ids(std::mt19937& rng, std::size_t n, unsigned control_percent = 0) {
  static const std::uint8_t kBytes[] = {0xE4, 0xBD, 0xA0, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9,
                                        0x41, 0x0A, 0xFF, 0xC0, 0xED, 0xA0, 0xF4, 0x90, 0xEF};
  Ids ids;
  for (std::size_t i = 0; i < n; ++i) {
    if (rng() % 100 < control_percent) {
      ids.push_back(static_cast<std::int32_t>(rng() % 3));
      continue;
    }
    switch (rng() % 8) {
      case 0:
      case 1: ids.push_back(static_cast<std::int32_t>(kBytes[rng() % std::size(kBytes)]) + 3); break;
      case 2: ids.push_back(static_cast<std::int32_t>(rng() % 256) + 3); break;
      case 3: ids.push_back(static_cast<std::int32_t>(rng() % 3)); break;
      case 4: ids.push_back(29871); break;
      default: ids.push_back(static_cast<std::int32_t>(259 + rng() % (32000 - 259))); break;
    }
  }
  return ids;
}

TEST(StreamingDecoder, RandomSequencesMatchFullDecode) {
  const Tokenizer& tok = llama2_tokenizer();
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 3000; ++trial) {
    const Ids ids = random_ids(rng, 1 + rng() % 40, trial % 3 == 0 ? 70 : 0);
    const Streamed s = stream(tok, ids);
    ASSERT_EQ(s.text, tok.decode(ids)) << "trial " << trial;
    // Chunks before finish() never end in a character that later bytes could still complete.
    for (std::size_t i = 0; i + 1 < s.chunks.size(); ++i) {
      const std::string& c = s.chunks[i];
      ASSERT_TRUE(is_valid_utf8(c)) << "trial " << trial << " chunk " << i;
    }
  }
}

TEST(StreamingDecoder, RandomOutputsAfterPromptMatchFullDecode) {
  const Tokenizer& tok = llama2_tokenizer();
  std::mt19937 rng(99);
  const std::string prompts[] = {"Once upon a time", "Hello, world! \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80",
                                 "  two  spaces\n", "x"};
  for (int trial = 0; trial < 1000; ++trial) {
    const Ids prompt = tok.encode(prompts[trial % std::size(prompts)], trial % 2 == 0);
    const Ids output = random_ids(rng, 1 + rng() % 30, trial % 3 == 0 ? 70 : 0);
    Ids all = prompt;
    all.insert(all.end(), output.begin(), output.end());
    const std::string full = tok.decode(all);
    const std::string shown = tok.decode(prompt);
    ASSERT_EQ(full.compare(0, shown.size(), shown), 0);
    EXPECT_EQ(stream(tok, output, prompt).text, full.substr(shown.size())) << "trial " << trial;
  }
}

TEST(StreamingDecoder, LongSequenceIsLinear) {
  // 200k tokens through a decoder whose cost grew with the length would take minutes.
  const Tokenizer& tok = llama2_tokenizer();
  const Ids sentence = tok.encode("Once upon a time \xE4\xBD\xA0 \xF0\x9F\x98\x80", false);
  StreamingDecoder decoder(tok);
  std::size_t total = 0;
  for (int i = 0; i < 200000 / static_cast<int>(sentence.size()); ++i) {
    for (std::int32_t id : sentence) total += decoder.push(id).size();
  }
  total += decoder.finish().size();
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace loom
