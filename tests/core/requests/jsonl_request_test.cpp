// One JSONL line -> one Request: every field, defaults, and the message for each kind of mistake.
#include "core/requests/jsonl_request.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace loom {
namespace {

Request parse_ok(const std::string& line, const SamplingParams& defaults = {}) {
  auto parsed = parse_jsonl_request(line, defaults);
  if (auto* message = std::get_if<std::string>(&parsed)) ADD_FAILURE() << line << " -> " << *message;
  return std::holds_alternative<Request>(parsed) ? std::get<Request>(parsed) : Request{};
}

std::string parse_bad(const std::string& line) {
  auto parsed = parse_jsonl_request(line, SamplingParams{});
  if (std::holds_alternative<Request>(parsed)) {
    ADD_FAILURE() << line << " was accepted";
    return "";
  }
  return std::get<std::string>(parsed);
}

TEST(JsonlRequest, EveryField) {
  Request r = parse_ok(
      R"({"id":"a","prompt":"Hi","max_tokens":7,"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,)"
      R"("repetition_penalty":1.1,"presence_penalty":0.5,"frequency_penalty":0.25,"seed":18446744073709551615,)"
      R"("stop":["\n\n","END"],"stop_token_ids":[2,7],"ignore_eos":true,"min_tokens":3,"n":4,"logprobs":5})");
  EXPECT_EQ(r.id, "a");
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_TRUE(r.prompt_token_ids.empty());
  EXPECT_EQ(r.params.max_tokens, 7);
  EXPECT_DOUBLE_EQ(r.params.temperature, 0.7);
  EXPECT_DOUBLE_EQ(r.params.top_p, 0.9);
  EXPECT_EQ(r.params.top_k, 40);
  EXPECT_DOUBLE_EQ(r.params.min_p, 0.05);
  EXPECT_DOUBLE_EQ(r.params.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(r.params.presence_penalty, 0.5);
  EXPECT_DOUBLE_EQ(r.params.frequency_penalty, 0.25);
  EXPECT_EQ(r.params.seed, 18446744073709551615ULL);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.params.stop_token_ids, (std::vector<std::int32_t>{2, 7}));
  EXPECT_TRUE(r.params.ignore_eos);
  EXPECT_EQ(r.params.min_tokens, 3);
  EXPECT_EQ(r.params.n, 4);
  EXPECT_EQ(r.params.logprobs, 5);
}

TEST(JsonlRequest, DefaultsApplyWhereFieldsAreAbsentOrNull) {
  SamplingParams defaults;
  defaults.temperature = 0.8;
  defaults.max_tokens = 99;
  defaults.stop = {"###"};
  defaults.seed = 5;
  Request r = parse_ok(R"({"prompt_token_ids":[1,2,3],"temperature":null,"top_k":5})", defaults);
  EXPECT_TRUE(r.id.empty());
  EXPECT_FALSE(r.prompt.has_value());
  EXPECT_EQ(r.prompt_token_ids, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(r.params.temperature, 0.8);
  EXPECT_EQ(r.params.max_tokens, 99);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"###"}));
  EXPECT_EQ(r.params.seed, 5u);
  EXPECT_EQ(r.params.top_k, 5);
}

TEST(JsonlRequest, IdAsIntegerOrString) {
  EXPECT_EQ(parse_ok(R"({"id":42,"prompt":"x"})").id, "42");
  EXPECT_EQ(parse_ok(R"({"id":-3,"prompt":"x"})").id, "-3");
  EXPECT_EQ(parse_ok(R"({"id":"req-7","prompt":"x"})").id, "req-7");
  EXPECT_NE(parse_bad(R"({"id":1.5,"prompt":"x"})").find(R"("id" must be a string or an integer, got a number (1.5))"),
            std::string::npos);
  EXPECT_NE(parse_bad(R"({"id":"","prompt":"x"})").find("must not be empty"), std::string::npos);
}

TEST(JsonlRequest, StopAsStringOrList) {
  EXPECT_EQ(parse_ok(R"({"prompt":"x","stop":"END"})").params.stop, (std::vector<std::string>{"END"}));
  EXPECT_EQ(parse_ok(R"({"prompt":"x","stop":["a","b"]})").params.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(parse_bad(R"({"prompt":"x","stop":["a",3]})").find(R"("stop[1]" must be a string, got a number (3))"),
            std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","stop":7})").find("a string or a list of strings"), std::string::npos);
}

TEST(JsonlRequest, AliasesAndVllmSpellings) {
  EXPECT_EQ(parse_ok(R"({"prompt":"x","max_new_tokens":12})").params.max_tokens, 12);
  EXPECT_EQ(parse_ok(R"({"prompt":"x","max_tokens":12.0})").params.max_tokens, 12);
  EXPECT_EQ(parse_ok(R"({"prompt":"x","top_k":-1})").params.top_k, 0);
  EXPECT_DOUBLE_EQ(parse_ok(R"({"prompt":"x","temperature":1})").params.temperature, 1.0);
  EXPECT_NE(parse_bad(R"({"prompt":"x","max_tokens":1,"max_new_tokens":2})").find("not both"), std::string::npos);
}

TEST(JsonlRequest, WrongTypeNamesFieldExpectedAndFound) {
  EXPECT_EQ(parse_bad(R"({"prompt":"x","temperature":"hot"})"), R"("temperature" must be a number, got a string ("hot"))");
  EXPECT_EQ(parse_bad(R"({"prompt":"x","ignore_eos":"yes"})"), R"("ignore_eos" must be true or false, got a string ("yes"))");
  EXPECT_EQ(parse_bad(R"({"prompt":"x","max_tokens":1.5})"), R"("max_tokens" must be a non-negative integer, got a number (1.5))");
  EXPECT_EQ(parse_bad(R"({"prompt":42})"), R"("prompt" must be a string, got a number (42))");
}

TEST(JsonlRequest, LongValuesAreShortenedInMessages) {
  std::string message = parse_bad(R"({"prompt":"x","temperature":")" + std::string(1000, 'a') + "\"}");
  EXPECT_LT(message.size(), 120u);
  EXPECT_NE(message.find("..."), std::string::npos);
}

TEST(JsonlRequest, NegativeCountsAreBad) {
  EXPECT_NE(parse_bad(R"({"prompt":"x","max_tokens":-1})").find(R"("max_tokens" must be a non-negative integer, got a number (-1))"),
            std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","min_tokens":-2})").find("\"min_tokens\""), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","n":0})").find(R"("n" must be an integer >= 1, got a number (0))"),
            std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","seed":-5})").find("\"seed\" must be a non-negative integer"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","top_k":-2})").find("\"top_k\""), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","max_tokens":3000000000})").find("\"max_tokens\""), std::string::npos);
}

TEST(JsonlRequest, TokenIdsMustBeNonNegativeIntegers) {
  EXPECT_NE(parse_bad(R"({"prompt_token_ids":[1,"two",3]})").find(R"("prompt_token_ids[1]" must be a token id)"),
            std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt_token_ids":[1,-2]})").find(R"("prompt_token_ids[1]")"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt_token_ids":[1.5]})").find("got a number (1.5)"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt_token_ids":"1 2 3"})").find("must be a list of token ids"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt_token_ids":[]})").find("must not be empty"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x","stop_token_ids":[true]})").find(R"("stop_token_ids[0]")"), std::string::npos);
}

TEST(JsonlRequest, PromptBothOrNeither) {
  EXPECT_NE(parse_bad(R"({"prompt":"x","prompt_token_ids":[1]})").find("not both"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"max_tokens":3})").find("missing the prompt"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":null})").find("missing the prompt"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":""})").find("\"prompt\" must not be empty"), std::string::npos);
}

TEST(JsonlRequest, UnknownFieldListsAcceptedOnesAndSuggests) {
  std::string message = parse_bad(R"({"prompt":"x","temprature":0.5})");
  EXPECT_NE(message.find("unknown field \"temprature\""), std::string::npos) << message;
  EXPECT_NE(message.find("Did you mean 'temperature'?"), std::string::npos) << message;
  EXPECT_NE(message.find("Accepted fields: id, prompt, prompt_token_ids"), std::string::npos) << message;
  EXPECT_EQ(parse_bad(R"({"prompt":"x","zzzzzzzz":1})").find("Did you mean"), std::string::npos);
}

TEST(JsonlRequest, NotJsonOrNotAnObject) {
  EXPECT_NE(parse_bad(R"({"prompt": "x")").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(parse_bad(R"({"prompt": "x")").find("[json.exception"), std::string::npos);
  EXPECT_NE(parse_bad(R"(["x"])").find("expected a JSON object ({...}), got a list"), std::string::npos);
  EXPECT_NE(parse_bad(R"({"prompt":"x"} trailing)").find("not valid JSON"), std::string::npos);
}

// Found by the jsonl_request fuzz target: nlohmann throws out_of_range (not parse_error) for a
// number beyond double's range, which escaped and ended the whole batch.
TEST(JsonlRequest, NumberTooLargeIsABadLine) {
  EXPECT_EQ(parse_bad(R"({"prompt": "x", "temperature": 1e400})"), "not valid JSON: number overflow parsing '1e400'");
  EXPECT_NE(parse_bad(R"({"prompt_token_ids": [-1e999]})").find("number overflow"), std::string::npos);
}

// Found while writing the jsonl_request fuzz target: describing a deeply nested value dumped it
// whole, recursively, and overflowed the stack (a segfault for a line of ~400 KB).
TEST(JsonlRequest, DeepNestingIsABadLineNotACrash) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  EXPECT_EQ(parse_bad(deep), "not valid JSON: lists and objects nest deeper than 64 levels");
  EXPECT_EQ(parse_bad(R"({"prompt": "x", "stop": )" + deep + "}"),
            "not valid JSON: lists and objects nest deeper than 64 levels");
  EXPECT_NE(parse_bad(R"({"prompt": "x", "stop": [[[["a"]]]]})").find("\"stop[0]\" must be a string"),
            std::string::npos);
}

TEST(JsonlRequest, ArrivalTimeIsSecondsFromTheStart) {
  EXPECT_DOUBLE_EQ(parse_ok(R"({"prompt":"x"})").arrival_time, 0.0);
  EXPECT_DOUBLE_EQ(parse_ok(R"({"prompt":"x","arrival_time":2.5})").arrival_time, 2.5);
  EXPECT_DOUBLE_EQ(parse_ok(R"({"prompt":"x","arrival_time":3})").arrival_time, 3.0);
  EXPECT_EQ(parse_bad(R"({"prompt":"x","arrival_time":-0.5})"),
            R"("arrival_time" must be a number >= 0 (seconds), got a number (-0.5))");
  EXPECT_EQ(parse_bad(R"({"prompt":"x","arrival_time":"1.0"})"),
            R"("arrival_time" must be a number >= 0 (seconds), got a string ("1.0"))");
}

TEST(JsonlRequest, AcceptedFieldsIncludeAlias) {
  auto fields = accepted_request_fields();
  EXPECT_EQ(fields.size(), 21u);
  EXPECT_NE(std::find(fields.begin(), fields.end(), "max_new_tokens"), fields.end());
}

}  // namespace
}  // namespace loom
