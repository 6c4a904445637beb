// loom serve's pure parts without a socket: the four prompt forms of a completion and the fields
// refused; chat's logprobs spelling and its aliases; the llama-2 and mistral templates at the
// token level (BOS/EOS as ids, the system message folded in); the llama-3 and ChatML templates
// against the text Hugging Face's Jinja templates render; histogram buckets.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_models.h"
#include "tools/loom/serve/api_error.h"
#include "tools/loom/serve/chat_request.h"
#include "tools/loom/serve/chat_template.h"
#include "tools/loom/serve/completion_request.h"
#include "tools/loom/serve/server_metrics.h"

namespace loom::serve {
namespace {

CompletionRequest completion(const std::string& body) { return parse_completion_request(body, SamplingParams{}, "m"); }

// The ApiError `call` throws: its status and message.
template <typename Call>
std::pair<int, std::string> refusal(Call call) {
  try {
    call();
  } catch (const ApiError& e) {
    return {e.status, e.what()};
  }
  return {0, ""};
}

TEST(CompletionRequest, ThePromptsFourFormsGiveOneRequestPerPrompt) {
  EXPECT_EQ(*completion(R"({"prompt": "hi"})").prompts.at(0).prompt, "hi");
  EXPECT_EQ(completion(R"({"prompt": ["a", "b", "c"]})").prompts.size(), 3u);
  EXPECT_EQ(completion(R"({"prompt": [1, 2, 3]})").prompts.at(0).prompt_token_ids,
            (std::vector<std::int32_t>{1, 2, 3}));
  const auto lists = completion(R"({"prompt": [[1, 2], [3], "text"], "n": 2, "temperature": 0.5})");
  ASSERT_EQ(lists.prompts.size(), 3u);
  EXPECT_EQ(lists.prompts[1].prompt_token_ids, (std::vector<std::int32_t>{3}));
  EXPECT_EQ(*lists.prompts[2].prompt, "text");
  for (const Request& r : lists.prompts) EXPECT_EQ(r.params.n, 2);
  EXPECT_EQ(lists.prompts[0].params.temperature, 0.5);
}

TEST(CompletionRequest, FieldsLoomCannotHonourAreRefusedByName) {
  for (const auto& [body, words] : std::vector<std::pair<std::string, std::string>>{
           {R"({"prompt": "x", "suffix": "y"})", "suffix"},
           {R"({"prompt": "x", "logit_bias": {"1": 2}})", "logit_bias"},
           {R"({"prompt": "x", "best_of": 3})", "best_of"},
           {R"({"prompt": "x", "echo": true, "logprobs": 1, "stream": true})", "echo"},
           {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
           {R"({"prompt": []})", "prompt"},
           {R"({"prompt": [1, -2]})", "outside"},
           {R"({"prompt": ""})", "empty"},
           {R"({"prompt": "x", "stream": "yes"})", "stream"},
           {R"({"prompt": "x", "model": "other"})", "does not exist"}}) {
    const auto [status, message] = refusal([&] { completion(body); });
    EXPECT_GE(status, 400) << body;
    EXPECT_NE(message.find(words), std::string::npos) << body << ": " << message;
  }
  EXPECT_TRUE(
      completion(R"({"prompt": "x", "best_of": 1, "logit_bias": {}, "user": "u", "unknown": 1})").prompts.size());
}

TEST(CompletionRequest, EchoWithLogprobsAsksForThePromptsLogprobsToo) {
  const auto r = completion(R"({"prompt": "x", "echo": true, "logprobs": 2})");
  EXPECT_EQ(r.prompts[0].params.logprobs, 2);
  EXPECT_EQ(r.prompts[0].params.prompt_logprobs, 2);
  EXPECT_FALSE(r.options.prompt_logprobs) << "vLLM's own field was not asked for";
  EXPECT_TRUE(completion(R"({"prompt": "x", "prompt_logprobs": 0})").options.prompt_logprobs);
}

TEST(ChatRequest, LogprobsIsABooleanWithTopLogprobsAndMaxCompletionTokensIsMaxTokens) {
  const ChatRequest r = parse_chat_request(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "logprobs": true, "top_logprobs": 3, "max_completion_tokens": 7})",
      SamplingParams{}, "m");
  EXPECT_EQ(r.messages.at(0).content, "ab");
  EXPECT_EQ(r.params.logprobs, 3);
  EXPECT_EQ(r.params.max_tokens, 7);
  EXPECT_TRUE(r.options.wants_logprobs);
  EXPECT_EQ(
      parse_chat_request(R"({"messages": [{"role": "user", "content": "a"}]})", SamplingParams{}, "m").params.logprobs,
      -1);
  for (const char* body : {R"({"messages": [{"role": "user", "content": "a"}], "top_logprobs": 2})",
                           R"({"messages": [{"role": "user", "content": "a"}], "logprobs": 2})", R"({"messages": []})",
                           R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
                           R"({"messages": [{"role": "user", "content": [{"type": 5}]}]})"}) {
    EXPECT_EQ(refusal([&] { parse_chat_request(body, SamplingParams{}, "m"); }).first, 400) << body;
  }
}

std::vector<std::int32_t> concat(std::initializer_list<std::vector<std::int32_t>> parts) {
  std::vector<std::int32_t> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

TEST(ChatTemplate, Llama2AndMistralRenderTurnsWithBosAndEosAsIds) {
  const Tokenizer t = Tokenizer::load(testing::test_models_dir() / "llama2-tokenizer.model");
  const std::int32_t bos = t.bos_id(), eos = t.eos_id();
  const std::vector<ChatMessage> chat = {
      {"system", " Be brief. "}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(ChatTemplate::named("llama-2")->render(chat, t),
            concat({{bos},
                    t.encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", false),
                    t.encode("Hello!", false),
                    {eos, bos},
                    t.encode("[INST] Bye [/INST]", false)}));
  EXPECT_EQ(ChatTemplate::named("mistral")->render(chat, t), concat({{bos},
                                                                     t.encode("[INST] Be brief.\n\nHi [/INST]", false),
                                                                     t.encode("Hello!", false),
                                                                     {eos},
                                                                     t.encode("[INST] Bye [/INST]", false)}));
  EXPECT_FALSE(ChatTemplate::named("llama-4").has_value());
  EXPECT_EQ(ChatTemplate::for_model(io::Architecture::kMistral, &t)->name(), "mistral");
  EXPECT_EQ(ChatTemplate::for_model(io::Architecture::kLlama, &t)->name(), "llama-2");
  EXPECT_EQ(ChatTemplate::named("qwen2")->missing_tokens(t), "<|im_start|>, <|im_end|>");
  EXPECT_FALSE(ChatTemplate::for_model(io::Architecture::kQwen2, &t).has_value()) << "no <|im_start|> in Llama-2's";
  const auto [status, message] = refusal([&] { ChatTemplate::named("chatml")->render({{"user", "hi"}}, t); });
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find("needs the token <|im_start|>"), std::string::npos) << message;
  EXPECT_FALSE(ChatTemplate::for_model(io::Architecture::kLlama, nullptr).has_value());
  for (const std::vector<ChatMessage>& bad : std::vector<std::vector<ChatMessage>>{
           {{"assistant", "x"}}, {{"user", "a"}, {"assistant", "b"}}, {{"user", "a"}, {"user", "b"}}, {{"tool", "x"}}})
    EXPECT_EQ(refusal([&] { ChatTemplate::named("llama-2")->render(bad, t); }).first, 400);
}

// Llama-3's and Qwen's templates are Jinja in tokenizer_config.json; Hugging Face renders the
// text and encodes it whole (special tokens cut out first). Rendering at the token level must give
// the same ids as encoding the text the Jinja template writes, spelled out here.
TEST(ChatTemplate, Llama3AndChatmlGiveTheIdsOfTheTextTheirJinjaTemplatesRender) {
  const auto bpe = std::filesystem::path(LOOM_SOURCE_DIR) / "tests" / "data" / "bpe";
  const Tokenizer llama3 = Tokenizer::load(bpe / "llama3.tokenizer.json");
  const Tokenizer qwen2 = Tokenizer::load(bpe / "qwen2.tokenizer.json");
  const std::vector<ChatMessage> chat = {
      {"system", " Be brief. "}, {"user", "Hi there\n"}, {"assistant", "Hello! 123"}, {"user", "Bye <|eot_id|>"}};
  const std::string header_text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello! 123<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nBye <|eot_id|><|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(ChatTemplate::named("llama-3")->render(chat, llama3), llama3.encode(header_text, false));
  EXPECT_EQ(ChatTemplate::for_model(io::Architecture::kLlama, &llama3)->name(), "llama-3");

  const std::string chatml_turns =
      "<|im_start|>user\nHi there\n<|im_end|>\n<|im_start|>assistant\nHello! 123<|im_end|>\n"
      "<|im_start|>user\nBye <|eot_id|><|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(ChatTemplate::named("chatml")->render(chat, qwen2),
            qwen2.encode("<|im_start|>system\n Be brief. <|im_end|>\n" + chatml_turns, false));
  std::vector<ChatMessage> no_system(chat.begin() + 1, chat.end());
  EXPECT_EQ(ChatTemplate::named("qwen2")->render(no_system, qwen2),
            qwen2.encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + chatml_turns, false));
  EXPECT_EQ(ChatTemplate::named("chatml")->render(no_system, qwen2), qwen2.encode(chatml_turns, false));
  EXPECT_EQ(ChatTemplate::for_model(io::Architecture::kQwen2, &qwen2)->name(), "qwen2");
  EXPECT_EQ(ChatTemplate::for_model(io::Architecture::kQwen3, &qwen2)->name(), "chatml");
  EXPECT_EQ(ChatTemplate::named("llama-3")->missing_tokens(qwen2),
            "<|start_header_id|>, <|end_header_id|>, <|eot_id|>");
}

TEST(ServerMetrics, HistogramBucketsAreCumulativeWithTheirSumAndCount) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 4.0, 9.0}) h.observe(v);
  std::string out;
  h.write(out, "x", "help", "a=\"b\"");
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"2\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"5\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"+Inf\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_sum{a=\"b\"} 16\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count{a=\"b\"} 5\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace loom::serve
