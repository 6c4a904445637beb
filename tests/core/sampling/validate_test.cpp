#include "core/sampling/validate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "loom/error.h"

namespace loom {
namespace {

// Expects validate() to reject the params with a RequestError whose message names `field`.
void expect_rejected(const std::function<void(SamplingParams&)>& edit, const std::string& field) {
  SamplingParams params;
  edit(params);
  try {
    validate(params);
    FAIL() << "validate accepted a bad " << field;
  } catch (const RequestError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + field + "'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("accepted"), std::string::npos) << e.what();
  }
}

TEST(SamplingValidate, DefaultsAndTypicalValuesPass) {
  EXPECT_NO_THROW(validate(SamplingParams{}));
  SamplingParams p;
  p.temperature = 0.8;
  p.top_p = 0.95;
  p.top_k = 40;
  p.min_p = 0.05;
  p.repetition_penalty = 1.1;
  p.presence_penalty = -0.5;
  p.frequency_penalty = 0.5;
  p.min_tokens = 10;
  p.max_tokens = 10;
  p.n = 4;
  p.stop_token_ids = {2, 7};
  EXPECT_NO_THROW(validate(p));
}

TEST(SamplingValidate, ErrorsNameTheField) {
  const double nan = std::nan("");
  expect_rejected([](SamplingParams& p) { p.temperature = -0.1; }, "temperature");
  expect_rejected([&](SamplingParams& p) { p.temperature = nan; }, "temperature");
  expect_rejected([](SamplingParams& p) { p.top_p = 0.0; }, "top_p");
  expect_rejected([](SamplingParams& p) { p.top_p = 1.5; }, "top_p");
  expect_rejected([&](SamplingParams& p) { p.top_p = nan; }, "top_p");
  expect_rejected([](SamplingParams& p) { p.top_k = -1; }, "top_k");
  expect_rejected([](SamplingParams& p) { p.logprobs = 21; }, "logprobs");
  expect_rejected([](SamplingParams& p) { p.logprobs = -2; }, "logprobs");
  expect_rejected([](SamplingParams& p) { p.min_p = -0.01; }, "min_p");
  expect_rejected([](SamplingParams& p) { p.min_p = 1.01; }, "min_p");
  expect_rejected([&](SamplingParams& p) { p.min_p = nan; }, "min_p");
  expect_rejected([](SamplingParams& p) { p.repetition_penalty = 0.0; }, "repetition_penalty");
  expect_rejected([&](SamplingParams& p) { p.repetition_penalty = nan; }, "repetition_penalty");
  expect_rejected([&](SamplingParams& p) { p.presence_penalty = nan; }, "presence_penalty");
  expect_rejected([&](SamplingParams& p) { p.frequency_penalty = nan; }, "frequency_penalty");
  expect_rejected([](SamplingParams& p) { p.max_tokens = -1; }, "max_tokens");
  expect_rejected([](SamplingParams& p) { p.min_tokens = -1; }, "min_tokens");
  expect_rejected([](SamplingParams& p) { p.min_tokens = p.max_tokens + 1; }, "min_tokens");
  expect_rejected([](SamplingParams& p) { p.n = 0; }, "n");
  expect_rejected([](SamplingParams& p) { p.stop_token_ids = {3, -2}; }, "stop_token_ids");
}

}  // namespace
}  // namespace loom
