#include "core/tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "loom/error.h"
#include "support/expect_error.h"
#include "tokenizer_test_util.h"

namespace loom {
namespace {

using tokenizer_test::llama2_tokenizer;
using tokenizer_test::llama2_tokenizer_path;
using Ids = std::vector<std::int32_t>;

// A fresh file path under the system temp folder, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& bytes) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loom-tok-XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    path_ = tmpl;
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  return bytes;
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Tokenizer, LoadsLlama2Vocabulary) {
  const Tokenizer& tok = llama2_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(1), "<s>");
  EXPECT_EQ(tok.piece(2), "</s>");
  EXPECT_EQ(tok.piece(15043), "\xE2\x96\x81Hello");
  EXPECT_TRUE(tok.is_control(1));
  EXPECT_FALSE(tok.is_control(15043));
  EXPECT_EQ(tok.byte_value(243), std::optional<std::uint8_t>(0xF0));
  EXPECT_EQ(tok.byte_value(3), std::optional<std::uint8_t>(0x00));
  EXPECT_EQ(tok.byte_value(15043), std::nullopt);
}

TEST(Tokenizer, EncodesReadmeTable) {
  const Tokenizer& tok = llama2_tokenizer();
  EXPECT_EQ(tok.encode("Once upon a time, there was a little girl named Lily.", false),
            (Ids{9038, 2501, 263, 931, 29892, 727, 471, 263, 2217, 7826, 4257, 365, 2354, 29889}));
  EXPECT_EQ(tok.encode("Hello, world! \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80", false),
            (Ids{15043, 29892, 3186, 29991, 29871, 30919, 31076, 29871, 243, 162, 155, 131}));
  EXPECT_EQ(tok.encode("  two  spaces\nnewline", false), (Ids{259, 1023, 29871, 8162, 13, 1482, 1220}));
}

TEST(Tokenizer, EncodeAddsBosOnRequest) {
  const Tokenizer& tok = llama2_tokenizer();
  EXPECT_EQ(tok.encode("Hello", true), (Ids{1, 15043}));
  EXPECT_EQ(tok.encode("", true), (Ids{1}));
  EXPECT_EQ(tok.encode("", false), Ids{});
}

TEST(Tokenizer, DecodeRoundTrips) {
  const Tokenizer& tok = llama2_tokenizer();
  for (const std::string text :
       {"Once upon a time, there was a little girl named Lily.",
        "Hello, world! \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80", "  two  spaces\nnewline", ""}) {
    EXPECT_EQ(tok.decode(tok.encode(text, false)), text);
    EXPECT_EQ(tok.decode(tok.encode(text, true)), text) << "BOS decodes to nothing";
  }
  EXPECT_EQ(tok.decode(Ids{1, 15043, 2}), "Hello");
}

TEST(Tokenizer, DecodeShowsBrokenBytesAsReplacementCharacter) {
  const Tokenizer& tok = llama2_tokenizer();
  EXPECT_EQ(tok.decode(Ids{243, 162}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Tokenizer, OutOfRangeIdIsRequestError) {
  const Tokenizer& tok = llama2_tokenizer();
  std::string msg = testing::message_of<RequestError>([&] { tok.decode(Ids{15043, 32000}); });
  EXPECT_CONTAINS(msg, "32000");
  EXPECT_CONTAINS(msg, "32000 tokens");
  msg = testing::message_of<RequestError>([&] { tok.piece(-1); });
  EXPECT_CONTAINS(msg, "-1");
  EXPECT_CONTAINS(msg, "32000");
  testing::message_of<RequestError>([&] { tok.check_id(40000); });
  testing::message_of<RequestError>([&] { tok.byte_value(32000); });
  EXPECT_NO_THROW(tok.check_id(31999));
}

TEST(Tokenizer, MissingFileIsModelError) {
  const auto path = std::filesystem::temp_directory_path() / "loom-no-such-tokenizer.model";
  const std::string msg = testing::message_of<ModelError>([&] { Tokenizer::load(path); });
  EXPECT_CONTAINS(msg, path.string());
  EXPECT_CONTAINS(msg, "does not exist");
}

TEST(Tokenizer, DirectoryIsModelError) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string msg = testing::message_of<ModelError>([&] { Tokenizer::load(dir); });
  EXPECT_CONTAINS(msg, dir.string());
}

TEST(Tokenizer, EmptyFileIsModelError) {
  TempFile file("");
  const std::string msg = testing::message_of<ModelError>([&] { Tokenizer::load(file.path()); });
  EXPECT_CONTAINS(msg, file.path().string());
  EXPECT_CONTAINS(msg, "empty");
}

TEST(Tokenizer, RandomBytesAreModelError) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    TempFile file(random_bytes(4096 + seed * 97, seed));
    const std::string msg = testing::message_of<ModelError>([&] { Tokenizer::load(file.path()); });
    EXPECT_CONTAINS(msg, file.path().string());
    EXPECT_CONTAINS(msg, "not a valid sentencepiece model");
  }
}

TEST(Tokenizer, TruncatedModelIsModelError) {
  const std::string good = file_bytes(llama2_tokenizer_path());
  ASSERT_GT(good.size(), 1000u);
  for (std::size_t keep : {std::size_t{1}, std::size_t{100}, good.size() / 2, good.size() - 1}) {
    TempFile file(good.substr(0, keep));
    const std::string msg = testing::message_of<ModelError>([&] { Tokenizer::load(file.path()); });
    EXPECT_CONTAINS(msg, file.path().string());
  }
}

}  // namespace
}  // namespace loom
