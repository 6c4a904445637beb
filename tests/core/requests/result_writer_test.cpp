// Result lines: fields, timings, index only for n > 1, invalid UTF-8, one flush per line.
#include "core/requests/result_writer.h"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "loom/error.h"

namespace loom {
namespace {

using nlohmann::json;

RequestResult sample() {
  RequestResult r;
  r.id = "req-1";
  r.text = "Hello world";
  r.token_ids = {10, 11, 12, 13, 14};
  r.finish_reason = "length";
  r.prompt_tokens = 9;
  r.arrival_s = 1.0;
  r.first_token_s = 1.25;
  r.finish_s = 1.65;
  return r;
}

TEST(ResultWriter, LineParsesBackWithAllFields) {
  std::ostringstream out;
  ResultWriter writer(out);
  writer.write(sample());
  std::string text = out.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  json j = json::parse(text);
  EXPECT_EQ(j["id"], "req-1");
  EXPECT_FALSE(j.contains("index"));
  EXPECT_FALSE(j.contains("error"));
  EXPECT_EQ(j["text"], "Hello world");
  EXPECT_EQ(j["token_ids"], json({10, 11, 12, 13, 14}));
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["prompt_tokens"], 9);
  EXPECT_EQ(j["completion_tokens"], 5);
  EXPECT_DOUBLE_EQ(j["timings"]["ttft_ms"].get<double>(), 250.0);
  EXPECT_DOUBLE_EQ(j["timings"]["e2e_ms"].get<double>(), 650.0);
  EXPECT_DOUBLE_EQ(j["timings"]["tpot_ms"].get<double>(), 100.0);
  // Fields come in a reading order, id first.
  EXPECT_EQ(text.rfind("{\"id\":\"req-1\",\"text\":", 0), 0u);
}

TEST(ResultWriter, IndexOnlyWhenRequestHadSeveralSamples) {
  RequestResult r = sample();
  r.n = 3;
  r.index = 2;
  json j = json::parse(format_result_line(r));
  EXPECT_EQ(j["index"], 2);
}

TEST(ResultWriter, LogprobsOnlyWhenAskedPerTokenWithTheTopAndMinusInfinityAsNull) {
  RequestResult r = sample();
  EXPECT_FALSE(json::parse(format_result_line(r)).contains("logprobs"));
  r.token_ids = {10, 11};
  r.logprobs = std::vector<TokenLogprobs>{{10, -0.25, {{10, -0.25}, {7, -1.5}}},
                                          {11, -std::numeric_limits<double>::infinity(), {}}};
  const json j = json::parse(format_result_line(r));
  ASSERT_EQ(j["logprobs"].size(), 2u);
  EXPECT_EQ(j["logprobs"][0]["token_id"], 10);
  EXPECT_DOUBLE_EQ(j["logprobs"][0]["logprob"].get<double>(), -0.25);
  EXPECT_EQ(j["logprobs"][0]["top_logprobs"][1]["token_id"], 7);
  EXPECT_DOUBLE_EQ(j["logprobs"][0]["top_logprobs"][1]["logprob"].get<double>(), -1.5);
  EXPECT_TRUE(j["logprobs"][1]["logprob"].is_null());
  EXPECT_TRUE(j["logprobs"][1]["top_logprobs"].empty());
  r.token_ids.clear();
  r.logprobs = std::vector<TokenLogprobs>{};
  EXPECT_EQ(json::parse(format_result_line(r))["logprobs"], json::array()) << "asked for, no token generated";
}

TEST(ResultWriter, ErrorResultAndMissingTimings) {
  RequestResult r;
  r.id = "7";
  r.finish_reason = "error";
  r.error = "prompt is longer than the context (5000 > 4096 tokens)";
  r.prompt_tokens = 5000;
  r.arrival_s = 0.5;
  r.finish_s = 0.5;
  json j = json::parse(format_result_line(r));
  EXPECT_EQ(j["error"], r.error);
  EXPECT_EQ(j["completion_tokens"], 0);
  EXPECT_TRUE(j["timings"]["ttft_ms"].is_null());
  EXPECT_TRUE(j["timings"]["tpot_ms"].is_null());
  EXPECT_DOUBLE_EQ(j["timings"]["e2e_ms"].get<double>(), 0.0);
}

TEST(ResultWriter, OneTokenHasNoTimePerOutputToken) {
  RequestResult r = sample();
  r.token_ids = {3};
  json j = json::parse(format_result_line(r));
  EXPECT_TRUE(j["timings"]["tpot_ms"].is_null());
  EXPECT_FALSE(j["timings"]["ttft_ms"].is_null());
}

TEST(ResultWriter, InvalidUtf8InTextStillGivesValidJson) {
  RequestResult r = sample();
  r.text = std::string("ok \xE6\x97 cut \xFF end ") + "日本";
  std::string line = format_result_line(r);
  json j = json::parse(line);  // throws on invalid JSON / UTF-8
  std::string text = j["text"];
  EXPECT_EQ(text.rfind("ok ", 0), 0u);
  EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
  EXPECT_NE(text.find("日本"), std::string::npos);          // valid UTF-8 kept as is
}

TEST(ResultWriter, ControlCharactersAndQuotesAreEscaped) {
  RequestResult r = sample();
  r.text = "line1\nline2\t\"q\"\\";
  std::string line = format_result_line(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(json::parse(line)["text"], r.text);
}

// A stream buffer that counts flushes (pubsync calls), so the test sees one per line.
class CountingBuf : public std::stringbuf {
 public:
  int syncs = 0;

 protected:
  int sync() override {
    ++syncs;
    return std::stringbuf::sync();
  }
};

TEST(ResultWriter, FlushesAfterEveryLine) {
  CountingBuf buf;
  std::ostream out(&buf);
  ResultWriter writer(out, "results.jsonl");
  RequestResult r = sample();
  for (int i = 1; i <= 3; ++i) {
    r.id = std::to_string(i);
    r.id.insert(r.id.begin(), 'r');
    writer.write(r);
    EXPECT_EQ(buf.syncs, i);
    EXPECT_EQ(writer.lines_written(), static_cast<std::size_t>(i));
    std::istringstream lines(buf.str());
    std::string line, last;
    int count = 0;
    while (std::getline(lines, line)) {
      last = line;
      ++count;
    }
    EXPECT_EQ(count, i);
    EXPECT_EQ(json::parse(last)["id"], r.id);
  }
}

TEST(ResultWriter, FailingStreamThrows) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  ResultWriter writer(out, "results.jsonl");
  try {
    writer.write(sample());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl: writing the result of request \"req-1\" failed"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace loom
