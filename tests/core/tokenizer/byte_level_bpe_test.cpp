// Byte-level BPE (tokenizer.json) against Hugging Face `tokenizers` 0.23.2 itself: the three
// tokenizers (Llama-3's, Qwen2's and GPT-2's set-up, trained small on Loom's docs) and their
// encodings and decodings in tests/data/bpe were made by tools/device/make_bpe_references.py on
// the GPU machine, where the library is installed.
#include "core/tokenizer/byte_level_bpe.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/tokenizer/streaming_decoder.h"
#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"
#include "loom/error.h"
#include "support/expect_error.h"

namespace loom {
namespace {

using Json = nlohmann::json;
using Ids = std::vector<std::int32_t>;

std::filesystem::path bpe_data() { return std::filesystem::path(LOOM_SOURCE_DIR) / "tests" / "data" / "bpe"; }

const Json& cases() {
  static const Json all = [] {
    std::ifstream in(bpe_data() / "cases.json");
    return Json::parse(in);
  }();
  return all;
}

const std::vector<std::string> kFamilies = {"llama3", "qwen2", "gpt2"};

class HuggingFaceReference : public ::testing::TestWithParam<std::string> {
 protected:
  const Tokenizer& tokenizer() {
    static std::map<std::string, Tokenizer> loaded;
    auto it = loaded.find(GetParam());
    if (it == loaded.end()) {
      it = loaded.emplace(GetParam(), Tokenizer::load(bpe_data() / (GetParam() + ".tokenizer.json"))).first;
    }
    return it->second;
  }
  const Json& reference() { return cases().at("tokenizers").at(GetParam()); }
};

TEST_P(HuggingFaceReference, EncodesEveryTextToTheSameIdsWithAndWithoutSpecialTokens) {
  const Tokenizer& t = tokenizer();
  EXPECT_EQ(t.vocab_size(), reference().at("vocab_size").get<int>());
  int checked = 0;
  for (const Json& c : reference().at("encode")) {
    const std::string text = c.at("text");
    SCOPED_TRACE("text: '" + text + "'");
    EXPECT_EQ(t.encode(text, false), c.at("ids").get<Ids>());
    EXPECT_EQ(t.encode(text, true), c.at("ids_with_special").get<Ids>());
    EXPECT_EQ(t.decode(c.at("ids").get<Ids>()), c.at("decoded").get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 80);
}

TEST_P(HuggingFaceReference, DecodesRandomIdsIncludingBrokenCharactersToTheSameText) {
  const Tokenizer& t = tokenizer();
  const Json& reference = this->reference();
  int replaced = 0;
  for (const Json& c : reference.at("decode")) {
    const Ids ids = c.at("ids").get<Ids>();
    const std::string text = c.at("text");
    EXPECT_EQ(t.decode(ids), text) << ::testing::PrintToString(ids);
    if (text.find("\xEF\xBF\xBD") != std::string::npos) ++replaced;
  }
  EXPECT_GT(replaced, 0) << "no reference decode had an invalid byte: the lossy path is untested";
}

TEST_P(HuggingFaceReference, StreamedTextConcatenatesToTheDecodeAndNeverEndsInsideACharacter) {
  const Tokenizer& t = tokenizer();
  ASSERT_TRUE(t.byte_level());
  for (const Json& c : reference().at("encode")) {
    const Ids ids = c.at("ids").get<Ids>();
    StreamingDecoder decoder(t);
    std::string streamed;
    for (std::int32_t id : ids) {
      const std::string piece = decoder.push(id);
      EXPECT_EQ(utf8::lossy(piece), piece) << "a pushed piece is not whole UTF-8";
      streamed += piece;
    }
    streamed += decoder.finish();
    EXPECT_EQ(streamed, t.decode(ids)) << c.at("text").get<std::string>();
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HuggingFaceReference, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return info.param; });

TEST(ByteLevelBpe, SpecialTokensAreNamedIdsTheBosComesFromTheTemplateAndTheEosFromTheConfig) {
  const Tokenizer llama3 = Tokenizer::load(bpe_data() / "llama3.tokenizer.json");
  ASSERT_TRUE(llama3.token_id("<|eot_id|>").has_value());
  EXPECT_EQ(llama3.bos_id(), *llama3.token_id("<|begin_of_text|>"));
  EXPECT_TRUE(llama3.is_control(*llama3.token_id("<|eot_id|>")));
  EXPECT_FALSE(llama3.token_id("<|not_a_token|>").has_value());
  EXPECT_EQ(llama3.eos_id(), -1) << "no tokenizer_config.json beside it";

  // With a tokenizer_config.json beside the file naming the EOS by its text.
  const auto dir = std::filesystem::temp_directory_path() / ("loom_bpe_eos_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(bpe_data() / "llama3.tokenizer.json", dir / "tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"eos_token": {"content": "<|eot_id|>"}, "bos_token": "<|begin_of_text|>"})";
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer.json").eos_id(), *llama3.token_id("<|eot_id|>"));
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<|nonexistent|>"})";
  EXPECT_CONTAINS(testing::message_of<ModelError>([&] { Tokenizer::load(dir / "tokenizer.json"); }),
                  "names eos_token '<|nonexistent|>'");
  std::filesystem::remove_all(dir);
}

TEST(ByteLevelBpe, TextThatIsNotUtf8FailsTheRequestAlone) {
  const Tokenizer gpt2 = Tokenizer::load(bpe_data() / "gpt2.tokenizer.json");
  EXPECT_CONTAINS(testing::message_of<RequestError>([&] { gpt2.encode("abc\xFF", false); }), "not valid UTF-8");
  EXPECT_CONTAINS(testing::message_of<RequestError>([&] { gpt2.encode("abc\xE4\xBD", false); }), "not valid UTF-8");
}

// A tokenizer.json edited in one place, written to a temporary file.
std::filesystem::path edited(const std::string& name, const std::function<void(Json&)>& edit) {
  std::ifstream in(bpe_data() / "gpt2.tokenizer.json");
  Json file = Json::parse(in);
  edit(file);
  const auto path = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << file.dump();
  return path;
}

TEST(ByteLevelBpe, RefusesAFileOutsideTheByteLevelFamilyNamingWhatItHas) {
  struct Case {
    const char* name;
    std::function<void(Json&)> edit;
    const char* message;
  };
  const std::vector<Case> refused = {
      {"wordpiece", [](Json& f) { f["model"]["type"] = "WordPiece"; }, "model.type is 'WordPiece'"},
      {"dropout", [](Json& f) { f["model"]["dropout"] = 0.1; }, "model.dropout is set"},
      {"suffix", [](Json& f) { f["model"]["end_of_word_suffix"] = "</w>"; }, "model.end_of_word_suffix is set"},
      {"metaspace",
       [](Json& f) {
         f["pre_tokenizer"] = {{"type", "Metaspace"}};
       },
       "pre_tokenizer.type 'Metaspace'"},
      {"lowercase",
       [](Json& f) {
         f["normalizer"] = {{"type", "Lowercase"}};
       },
       "normalizer.type 'Lowercase'"},
      {"regex",
       [](Json& f) {
         f["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
       },
       "does not compile"},
      {"removed",
       [](Json& f) {
         f["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\s"}}}, {"behavior", "Removed"}};
       },
       "behavior 'Removed'"},
      {"merge", [](Json& f) { f["model"]["merges"].push_back("zzqq xxyy"); }, "not in the vocabulary"},
      {"decoder",
       [](Json& f) {
         f["decoder"] = {{"type", "Metaspace"}};
       },
       "decoder.type is Metaspace"},
  };
  for (const Case& c : refused) {
    SCOPED_TRACE(c.name);
    const auto path = edited(c.name, c.edit);
    const std::string message = testing::message_of<ModelError>([&] { Tokenizer::load(path); });
    EXPECT_CONTAINS(message, path.string());
    EXPECT_CONTAINS(message, c.message);
    std::filesystem::remove(path);
  }
}

TEST(ByteLevelBpe, AnAddedTokenWithLstripAndRstripTakesTheSpacesAroundIt) {
  const auto plain = edited("plain", [](Json& f) {
    f["added_tokens"] = Json::array({{{"id", 1500}, {"content", "<|x|>"}, {"special", true}}});
  });
  const auto stripping = edited("strip", [](Json& f) {
    f["added_tokens"] =
        Json::array({{{"id", 1500}, {"content", "<|x|>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}}});
  });
  const Tokenizer a = Tokenizer::load(plain), b = Tokenizer::load(stripping);
  const Ids with_spaces = a.encode("hi  <|x|>  there", false), stripped = b.encode("hi  <|x|>  there", false);
  EXPECT_EQ(stripped, b.encode("hi<|x|>there", false));
  EXPECT_GT(with_spaces.size(), stripped.size());
  EXPECT_EQ(b.decode(stripped), "hithere") << "the special token vanishes in decode";
  std::filesystem::remove(plain);
  std::filesystem::remove(stripping);
}

TEST(ByteLevelBpe, IgnoreMergesTakesAWordThatIsInTheVocabularyWholeEvenWhereNoMergesMakeIt) {
  // "Ġzqxj" (" zqxj") added to the vocabulary with no merge that builds it, as Llama-3 has words.
  auto with_word = [](bool ignore_merges) {
    return edited(ignore_merges ? "ignore" : "merge", [ignore_merges](Json& f) {
      f["model"]["vocab"]["\u0120zqxj"] = 1500;
      f["model"]["ignore_merges"] = ignore_merges;
    });
  };
  const auto ignoring = with_word(true), merging = with_word(false);
  EXPECT_EQ(Tokenizer::load(ignoring).encode("a zqxj", false).back(), 1500);
  const Ids merged = Tokenizer::load(merging).encode("a zqxj", false);
  EXPECT_GT(merged.size(), 2u) << "without ignore_merges the merges spell it";
  EXPECT_EQ(std::count(merged.begin(), merged.end(), 1500), 0);
  std::filesystem::remove(ignoring);
  std::filesystem::remove(merging);
}

TEST(Utf8, LossyReplacesEachMaximalInvalidPartWithOneReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  // Expected outputs as Python's bytes.decode("utf-8", "replace") gives them.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "abc"},
      {"\xE4\xBD\xA0", "\xE4\xBD\xA0"},
      {"\xE4\xBD", r},  // cut off at the end: one
      {"\xE4\xBD"
       "A",
       r + "A"},                            // broken by ASCII: one, then the ASCII
      {"\x80\x80", r + r},                  // stray continuations: one each
      {"\xC0\xAF", r + r},                  // overlong lead: invalid alone
      {"\xED\xA0\x80", r + r + r},          // a surrogate: the second byte is out of range
      {"\xF4\x90\x80\x80", r + r + r + r},  // past U+10FFFF
      {"\xF0\x9F\x8E", r},                  // a 4-byte character missing its last byte
      {"\xF0\x9F\x8E\x89", "\xF0\x9F\x8E\x89"},
      {"\xFF"
       "a\xE2\x82",
       r + "a" + r},
  };
  for (const auto& [in, out] : cases) {
    EXPECT_EQ(utf8::lossy(in), out) << ::testing::PrintToString(in);
    EXPECT_EQ(utf8::is_valid(in), in == out) << ::testing::PrintToString(in);
  }
}

TEST(Utf8, SettledPrefixHoldsOnlyAnUnfinishedCharacterThatMoreBytesCouldComplete) {
  EXPECT_EQ(utf8::settled_prefix("ab\xE4\xBD"), 2u);
  EXPECT_EQ(utf8::settled_prefix("ab\xE4"), 2u);
  EXPECT_EQ(utf8::settled_prefix("ab\xE4\xBD\xA0"), 5u);
  EXPECT_EQ(utf8::settled_prefix("ab\xF0\x9F\x8E"), 2u);
  EXPECT_EQ(utf8::settled_prefix("ab\xE4"
                                 "A"),
            4u)
      << "already broken: nothing can complete it";
  EXPECT_EQ(utf8::settled_prefix("ab\xED\xA0"), 4u) << "a surrogate's start is never completed";
  EXPECT_EQ(utf8::settled_prefix("\x80"), 1u);
}

}  // namespace
}  // namespace loom
