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
  std::string system;
  std::vector<const ChatMessage*> turns;
};

Conversation conversation(const std::vector<ChatMessage>& messages) {
  Conversation c;
  std::size_t i = 0;
  if (!messages.empty() && messages[0].role == "system") c.system = trimmed(messages[i++].content);
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
  if (name == "llama-2" || name == "mistral") return ChatTemplate(std::string(name));
  return std::nullopt;
}

std::optional<ChatTemplate> ChatTemplate::for_model(io::Architecture architecture, const Tokenizer* tokenizer) {
  if (!tokenizer) return std::nullopt;
  if (architecture == io::Architecture::kMistral) return ChatTemplate("mistral");
  if (architecture == io::Architecture::kLlama) return ChatTemplate("llama-2");
  return std::nullopt;
}

std::string ChatTemplate::names() { return "llama-2, mistral"; }

std::vector<std::int32_t> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                               const Tokenizer& tokenizer) const {
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

}  // namespace loom::serve
