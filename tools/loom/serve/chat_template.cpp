#include "tools/loom/serve/chat_template.h"

#include "tools/loom/serve/api_error.h"

namespace loom::serve {

namespace {

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\n\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\n\r") - first + 1);
}

void append(std::vector<std::int32_t>& ids, const std::vector<std::int32_t>& more) {
  ids.insert(ids.end(), more.begin(), more.end());
}

// The system message (if any) and the turns after it, checked: user and assistant alternate,
// starting and ending with user.
struct Conversation {
  bool has_system = false;
  std::string system;      // trimmed
  std::string system_raw;  // as sent (ChatML does not trim)
  std::vector<const ChatMessage*> turns;
};

Conversation conversation(const std::vector<ChatMessage>& messages) {
  Conversation c;
  std::size_t i = 0;
  if (!messages.empty() && messages[0].role == "system") {
    c.has_system = true;
    c.system_raw = messages[i++].content;
    c.system = trimmed(c.system_raw);
  }
  for (; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    const char* expected = c.turns.size() % 2 == 0 ? "user" : "assistant";
    if (role != "user" && role != "assistant" && role != "system")
      throw ApiError(
          400, "message " + std::to_string(i) + " has role \"" + role + "\"; roles are system, user and assistant",
          "messages");
    if (role != expected)
      throw ApiError(400,
                     "message " + std::to_string(i) + " has role \"" + role + "\" where \"" + expected +
                         "\" is expected: a system message may come first, then user and assistant "
                         "messages in turn, the last one from the user",
                     "messages");
    c.turns.push_back(&messages[i]);
  }
  if (c.turns.empty() || c.turns.size() % 2 == 0)
    throw ApiError(400, "the last message must come from the user", "messages");
  return c;
}

}  // namespace

std::optional<ChatTemplate> ChatTemplate::named(std::string_view name) {
  if (name == "llama-2" || name == "mistral" || name == "llama-3" || name == "qwen2" || name == "chatml")
    return ChatTemplate(std::string(name));
  return std::nullopt;
}

std::optional<ChatTemplate> ChatTemplate::for_model(io::Architecture architecture, const Tokenizer* tokenizer) {
  if (!tokenizer) return std::nullopt;
  std::optional<ChatTemplate> chosen;
  switch (architecture) {
    case io::Architecture::kMistral:
      chosen = ChatTemplate("mistral");
      break;
    case io::Architecture::kLlama:
      // Llama-3's tokenizer is a tokenizer.json with header tokens; Llama-2's a sentencepiece model.
      chosen = ChatTemplate(tokenizer->token_id("<|start_header_id|>") ? "llama-3" : "llama-2");
      break;
    case io::Architecture::kQwen2:
    case io::Architecture::kQwen2Moe:
      chosen = ChatTemplate("qwen2");
      break;
    case io::Architecture::kQwen3:
      chosen = ChatTemplate("chatml");
      break;
    default:
      break;
  }
  // A tokenizer without the template's special tokens (a Qwen shape given Llama-2's tokenizer).
  if (chosen && !chosen->missing_tokens(*tokenizer).empty()) return std::nullopt;
  return chosen;
}

std::string ChatTemplate::names() { return "llama-2, llama-3, mistral, qwen2, chatml"; }

std::string ChatTemplate::missing_tokens(const Tokenizer& tokenizer) const {
  std::vector<const char*> needed;
  if (name_ == "llama-3") needed = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  if (name_ == "qwen2" || name_ == "chatml") needed = {"<|im_start|>", "<|im_end|>"};
  std::string missing;
  for (const char* token : needed) {
    if (!tokenizer.token_id(token)) missing += std::string(missing.empty() ? "" : ", ") + token;
  }
  return missing;
}

std::vector<std::int32_t> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                               const Tokenizer& tokenizer) const {
  if (name_ == "llama-3") return render_llama3(messages, tokenizer);
  if (name_ == "qwen2" || name_ == "chatml") return render_chatml(messages, tokenizer);
  const Conversation c = conversation(messages);
  std::vector<std::int32_t> ids;
  const std::int32_t bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  for (std::size_t t = 0; t < c.turns.size(); ++t) {
    std::string content = trimmed(c.turns[t]->content);
    if (t % 2 == 1) {  // the assistant's answer, closed by EOS
      append(ids, tokenizer.encode(content, false));
      if (eos >= 0) ids.push_back(eos);
      continue;
    }
    if (t == 0 && !c.system.empty())
      content = name_ == "llama-2" ? "<<SYS>>\n" + c.system + "\n<</SYS>>\n\n" + content : c.system + "\n\n" + content;
    // Llama-2 opens every exchange with BOS, Mistral the conversation only.
    if (bos >= 0 && (t == 0 || name_ == "llama-2")) ids.push_back(bos);
    append(ids, tokenizer.encode("[INST] " + content + " [/INST]", false));
  }
  return ids;
}

namespace {

// The id of a template's special token; a tokenizer without it cannot render the template.
std::int32_t special_id(const Tokenizer& tokenizer, const char* content, const std::string& template_name) {
  if (auto id = tokenizer.token_id(content)) return *id;
  throw ApiError(400,
                 "the " + template_name + " chat template needs the token " + content + ", which tokenizer '" +
                     tokenizer.path().string() + "' does not have",
                 "messages");
}

}  // namespace

// Meta's Llama-3 template: <|begin_of_text|>, then per message
// <|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>, then the
// assistant's header. The special tokens are ids; the text between them is encoded as the whole
// rendered string would be by Hugging Face (which cuts the string at those tokens first).
std::vector<std::int32_t> ChatTemplate::render_llama3(const std::vector<ChatMessage>& messages,
                                                      const Tokenizer& tokenizer) const {
  const Conversation c = conversation(messages);
  const std::int32_t start = special_id(tokenizer, "<|start_header_id|>", name_),
                     end = special_id(tokenizer, "<|end_header_id|>", name_),
                     eot = special_id(tokenizer, "<|eot_id|>", name_);
  std::vector<std::int32_t> ids;
  if (tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
  auto message = [&](const std::string& role, const std::string& content) {
    ids.push_back(start);
    append(ids, tokenizer.encode(role, false));
    ids.push_back(end);
    append(ids, tokenizer.encode("\n\n" + trimmed(content), false));
    ids.push_back(eot);
  };
  if (c.has_system) message("system", c.system);
  for (const ChatMessage* turn : c.turns) message(turn->role, turn->content);
  ids.push_back(start);
  append(ids, tokenizer.encode("assistant", false));
  ids.push_back(end);
  append(ids, tokenizer.encode("\n\n", false));
  return ids;
}

// ChatML: <|im_start|>{role}\n{content}<|im_end|>\n per message, then <|im_start|>assistant\n.
// Qwen2's template opens with "You are a helpful assistant." as the system message when the
// conversation has none; plain ChatML (Qwen3) adds nothing.
std::vector<std::int32_t> ChatTemplate::render_chatml(const std::vector<ChatMessage>& messages,
                                                      const Tokenizer& tokenizer) const {
  const Conversation c = conversation(messages);
  const std::int32_t start = special_id(tokenizer, "<|im_start|>", name_),
                     end = special_id(tokenizer, "<|im_end|>", name_);
  std::vector<std::int32_t> ids;
  auto message = [&](const std::string& role, const std::string& content) {
    ids.push_back(start);
    append(ids, tokenizer.encode(role + "\n" + content, false));
    ids.push_back(end);
    append(ids, tokenizer.encode("\n", false));
  };
  if (c.has_system) {
    message("system", c.system_raw);
  } else if (name_ == "qwen2") {
    message("system", "You are a helpful assistant.");
  }
  for (const ChatMessage* turn : c.turns) message(turn->role, turn->content);
  ids.push_back(start);
  append(ids, tokenizer.encode("assistant\n", false));
  return ids;
}

}  // namespace loom::serve
