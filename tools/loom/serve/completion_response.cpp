#include "tools/loom/serve/completion_response.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace loom::serve {

namespace {

using json = nlohmann::json;

// JSON has no -inf: a token the model rules out reads as vLLM writes it.
double finite(double logprob) { return std::isfinite(logprob) ? logprob : -9999.0; }

json bytes_of(const std::string& text) {
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// Completions' logprobs: parallel lists of tokens, their log-probabilities, the top ones and
// their offsets in the text.
json completion_logprobs(const ChoiceOutput& c, const ResponseOptions& options, const TokenText& token_text) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  std::size_t offset = c.text_offset;
  std::vector<TokenLogprobs> listed;
  if (options.echo && c.prompt_first_token >= 0) {  // the prompt's tokens first, the first without one
    const std::string text = token_text(c.prompt_first_token);
    tokens.push_back(text);
    token_logprobs.push_back(nullptr);
    top.push_back(nullptr);
    offsets.push_back(offset);
    offset += text.size();
    listed = c.prompt_logprobs;
  }
  listed.insert(listed.end(), c.logprobs.begin(), c.logprobs.end());
  for (const TokenLogprobs& lp : listed) {
    const std::string text = token_text(lp.token);
    tokens.push_back(text);
    token_logprobs.push_back(finite(lp.logprob));
    json best = json::object();
    for (const auto& [id, value] : lp.top) best[token_text(id)] = finite(value);
    top.push_back(std::move(best));
    offsets.push_back(offset);
    offset += text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

// Chat's logprobs: one entry per token, with its bytes and its top alternatives.
json chat_logprobs(const ChoiceOutput& c, const TokenText& token_text) {
  json content = json::array();
  for (const TokenLogprobs& lp : c.logprobs) {
    const std::string text = token_text(lp.token);
    json top = json::array();
    for (const auto& [id, value] : lp.top) {
      const std::string alt = token_text(id);
      top.push_back({{"token", alt}, {"logprob", finite(value)}, {"bytes", bytes_of(alt)}});
    }
    content.push_back(
        {{"token", text}, {"logprob", finite(lp.logprob)}, {"bytes", bytes_of(text)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json finish_reason(const ChoiceOutput& c) { return c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason); }

json logprobs_of(const ResponseHead& head, const ChoiceOutput& c, const ResponseOptions& options,
                 const TokenText& token_text) {
  if (!options.wants_logprobs) return nullptr;
  return head.chat ? chat_logprobs(c, token_text) : completion_logprobs(c, options, token_text);
}

// vLLM's prompt_logprobs: null for the first prompt token, then {"<id>": {"logprob",
// "decoded_token"}} with the token's own entry and its top alternatives.
void add_prompt_logprobs(json& choice, const ChoiceOutput& c, const ResponseOptions& options,
                         const TokenText& token_text) {
  if (!options.prompt_logprobs || c.prompt_first_token < 0) return;
  json list = json::array({nullptr});
  for (const TokenLogprobs& lp : c.prompt_logprobs) {
    json entry = json::object();
    for (const auto& [id, value] : lp.top)
      entry[std::to_string(id)] = {{"logprob", finite(value)}, {"decoded_token", token_text(id)}};
    entry[std::to_string(lp.token)] = {{"logprob", finite(lp.logprob)}, {"decoded_token", token_text(lp.token)}};
    list.push_back(std::move(entry));
  }
  choice["prompt_logprobs"] = std::move(list);
}

void add_token_ids(json& choice, const ChoiceOutput& c, const ResponseOptions& options) {
  if (!options.return_token_ids) return;
  choice["token_ids"] = c.token_ids;
  if (!c.prompt_token_ids.empty()) choice["prompt_token_ids"] = c.prompt_token_ids;
}

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

// Invalid UTF-8 (a character cut by max_tokens) is written as U+FFFD, so every body is JSON.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string response_body(const ResponseHead& head, const std::vector<ChoiceOutput>& choices,
                          const ResponseOptions& options, const Usage& usage, const TokenText& token_text) {
  json list = json::array();
  for (const ChoiceOutput& c : choices) {
    json choice = {{"index", c.index},
                   {"logprobs", logprobs_of(head, c, options, token_text)},
                   {"finish_reason", finish_reason(c)}};
    if (head.chat)
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else
      choice["text"] = c.text;
    add_token_ids(choice, c, options);
    add_prompt_logprobs(choice, c, options, token_text);
    list.push_back(std::move(choice));
  }
  return dump({{"id", head.id},
               {"object", head.chat ? "chat.completion" : "text_completion"},
               {"created", head.created},
               {"model", head.model},
               {"choices", list},
               {"usage", usage_json(usage)}});
}

std::string chunk_body(const ResponseHead& head, const ChoiceOutput& delta, const ResponseOptions& options,
                       const TokenText& token_text, bool first) {
  json choice = {{"index", delta.index},
                 {"logprobs", logprobs_of(head, delta, options, token_text)},
                 {"finish_reason", finish_reason(delta)}};
  if (head.chat) {
    json message = json::object();
    if (first) message["role"] = "assistant";
    if (!delta.text.empty() || !first) message["content"] = delta.text;
    choice["delta"] = std::move(message);
  } else {
    choice["text"] = delta.text;
  }
  add_token_ids(choice, delta, options);
  add_prompt_logprobs(choice, delta, options, token_text);
  return dump({{"id", head.id},
               {"object", head.chat ? "chat.completion.chunk" : "text_completion"},
               {"created", head.created},
               {"model", head.model},
               {"choices", json::array({choice})}});
}

std::string usage_chunk_body(const ResponseHead& head, const Usage& usage) {
  return dump({{"id", head.id},
               {"object", head.chat ? "chat.completion.chunk" : "text_completion"},
               {"created", head.created},
               {"model", head.model},
               {"choices", json::array()},
               {"usage", usage_json(usage)}});
}

std::string models_body(const std::string& model, std::int64_t created, std::size_t max_model_len,
                        std::size_t vocab_size) {
  return dump({{"object", "list"},
               {"data", json::array({{{"id", model},
                                      {"object", "model"},
                                      {"created", created},
                                      {"owned_by", "loom"},
                                      {"root", model},
                                      {"max_model_len", max_model_len},
                                      {"vocab_size", vocab_size}}})}});
}

}  // namespace loom::serve
