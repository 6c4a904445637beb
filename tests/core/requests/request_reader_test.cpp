// The input file as a whole: formats, auto-detection, line numbers, ids and the bad-line policy.
#include "core/requests/request_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>

#include "loom/error.h"

namespace loom {
namespace {

ReadResult read(const std::string& text, InputFormat format = InputFormat::kAuto,
                BadLinePolicy policy = BadLinePolicy::kSkip, const SamplingParams& defaults = {}) {
  std::istringstream in(text);
  return read_requests(in, "requests.jsonl", defaults, format, policy);
}

TEST(RequestReader, TextOnePromptPerLine) {
  SamplingParams defaults;
  defaults.max_tokens = 17;
  auto result = read("first\n\n   \nsecond\r\nthird ünïcødé 日本語 🙂\r\n\n", InputFormat::kAuto, BadLinePolicy::kSkip,
                     defaults);
  EXPECT_EQ(result.format, InputFormat::kText);
  ASSERT_EQ(result.requests.size(), 3u);
  EXPECT_TRUE(result.bad_lines.empty());
  EXPECT_EQ(result.requests[0].prompt, "first");
  EXPECT_EQ(result.requests[1].prompt, "second");
  EXPECT_EQ(result.requests[2].prompt, "third ünïcødé 日本語 🙂");
  EXPECT_EQ(result.requests[0].line, 1u);
  EXPECT_EQ(result.requests[1].line, 4u);
  EXPECT_EQ(result.requests[2].line, 5u);
  EXPECT_EQ(result.requests[1].id, "line-4");
  EXPECT_EQ(result.requests[2].params.max_tokens, 17);
}

TEST(RequestReader, TextKeepsBracesAndQuotesWhenForced) {
  auto result = read("{not json} \"quoted\" \n", InputFormat::kText);
  ASSERT_EQ(result.requests.size(), 1u);
  EXPECT_EQ(result.requests[0].prompt, "{not json} \"quoted\" ");
}

TEST(RequestReader, ByteOrderMarkIsDropped) {
  auto result = read("\xEF\xBB\xBF{\"prompt\":\"x\"}\n");
  EXPECT_EQ(result.format, InputFormat::kJsonl);
  ASSERT_EQ(result.requests.size(), 1u);
}

TEST(RequestReader, AutoDetectsJsonlFromFirstNonBlankLine) {
  auto result = read("\n  \n  {\"prompt\":\"a\"}\n{\"prompt_token_ids\":[1]}\n");
  EXPECT_EQ(result.format, InputFormat::kJsonl);
  ASSERT_EQ(result.requests.size(), 2u);
  EXPECT_EQ(result.requests[0].line, 3u);
  EXPECT_EQ(read("hello {\"prompt\":\"a\"}\n").format, InputFormat::kText);
  EXPECT_EQ(read("").format, InputFormat::kText);
  EXPECT_TRUE(read("").requests.empty());
}

TEST(RequestReader, ForcedJsonlRejectsTextLines) {
  auto result = read("plain prompt\n", InputFormat::kJsonl);
  EXPECT_TRUE(result.requests.empty());
  ASSERT_EQ(result.bad_lines.size(), 1u);
  EXPECT_NE(result.bad_lines[0].message.find("requests.jsonl:1: not valid JSON"), std::string::npos);
}

TEST(RequestReader, BadLinesNameSourceAndLine) {
  std::string input =
      "{\"prompt\":\"ok\"}\n"                     // 1
      "\n"                                          // 2
      "{\"prompt\":\"x\",\"temperature\":\"hot\"}\r\n"  // 3
      "{\"prompt\":\"y\",\"temprature\":1}\n"    // 4
      "[1,2]\n"                                     // 5
      "{\"prompt\":\"z\"\n"                       // 6
      "{\"max_tokens\":4}\n"                      // 7
      "{\"prompt\":\"ok again\"}\n";              // 8
  auto result = read(input);
  ASSERT_EQ(result.requests.size(), 2u);
  EXPECT_EQ(result.requests[1].line, 8u);
  ASSERT_EQ(result.bad_lines.size(), 5u);
  EXPECT_EQ(result.bad_lines[0].line, 3u);
  EXPECT_EQ(result.bad_lines[0].message, R"(requests.jsonl:3: "temperature" must be a number, got a string ("hot"))");
  EXPECT_EQ(result.bad_lines[1].line, 4u);
  EXPECT_NE(result.bad_lines[1].message.find("requests.jsonl:4: unknown field \"temprature\""), std::string::npos);
  EXPECT_NE(result.bad_lines[2].message.find("requests.jsonl:5: expected a JSON object"), std::string::npos);
  EXPECT_NE(result.bad_lines[3].message.find("requests.jsonl:6: not valid JSON"), std::string::npos);
  EXPECT_NE(result.bad_lines[4].message.find("requests.jsonl:7: missing the prompt"), std::string::npos);
}

TEST(RequestReader, FailPolicyThrowsUsageErrorForFirstBadLine) {
  std::string input = "{\"prompt\":\"ok\"}\n{\"prompt\":\"x\",\"n\":0}\n{\"nope\":1}\n";
  try {
    read(input, InputFormat::kAuto, BadLinePolicy::kFail);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), R"(requests.jsonl:2: "n" must be an integer >= 1, got a number (0))");
    EXPECT_EQ(e.exit_code(), 2);
  }
  auto skipped = read(input, InputFormat::kAuto, BadLinePolicy::kSkip);
  EXPECT_EQ(skipped.requests.size(), 1u);
  EXPECT_EQ(skipped.bad_lines.size(), 2u);
}

TEST(RequestReader, DuplicateIdIsABadLine) {
  auto result = read("{\"id\":\"a\",\"prompt\":\"1\"}\n{\"id\":7,\"prompt\":\"2\"}\n{\"id\":\"a\",\"prompt\":\"3\"}\n"
                     "{\"id\":\"7\",\"prompt\":\"4\"}\n");
  ASSERT_EQ(result.requests.size(), 2u);
  ASSERT_EQ(result.bad_lines.size(), 2u);
  EXPECT_EQ(result.bad_lines[0].message,
            "requests.jsonl:3: duplicate id \"a\" (first used on line 1); ids must be unique");
  EXPECT_EQ(result.bad_lines[1].line, 4u);
}

TEST(RequestReader, GeneratedIdsAreUniqueAndAvoidGivenOnes) {
  auto result = read("{\"prompt\":\"1\"}\n{\"id\":\"line-3\",\"prompt\":\"2\"}\n{\"prompt\":\"3\"}\n{\"prompt\":\"4\"}\n");
  ASSERT_EQ(result.requests.size(), 4u);
  std::set<std::string> ids;
  for (const auto& r : result.requests) ids.insert(r.id);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(result.requests[0].id, "line-1");
  EXPECT_EQ(result.requests[1].id, "line-3");
  EXPECT_EQ(result.requests[2].id, "line-3-2");
  EXPECT_EQ(result.requests[3].id, "line-4");
}

TEST(RequestReader, LongLinesReadInLinearTime) {
  // 100k-token prompt as ids, plus a 1 MB text prompt: well under a second each.
  std::string ids = "{\"prompt_token_ids\":[";
  for (int i = 0; i < 100000; ++i) {
    if (i > 0) ids.push_back(',');
    ids.append(std::to_string(i % 32000));
  }
  ids += "]}\n";
  auto start = std::chrono::steady_clock::now();
  auto result = read(ids + "{\"prompt\":\"" + std::string(1 << 20, 'w') + "\"}\n");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.requests.size(), 2u);
  EXPECT_EQ(result.requests[0].prompt_token_ids.size(), 100000u);
  EXPECT_EQ(result.requests[1].prompt->size(), std::size_t{1} << 20);
  EXPECT_LT(std::chrono::duration<double>(elapsed).count(), 2.0);
}

}  // namespace
}  // namespace loom
