// Chat templates: a conversation of messages turned into the prompt's token ids, ending where
// the assistant's reply begins. Built in, for the models whose tokenizer Loom reads
// (sentencepiece tokenizer.model): Llama-2-chat's [INST] <<SYS>> format and Mistral-Instruct's.
// Rendered at the token level: BOS and EOS are ids, never text that could be tokenized as
// "<s>"; each text segment is encoded by the tokenizer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/model_config.h"
#include "core/tokenizer/tokenizer.h"

namespace loom::serve {

struct ChatMessage {
  std::string role;  // "system" (first only), then "user" and "assistant" in turn, ending with "user"
  std::string content;
};

class ChatTemplate {
 public:
  // "llama-2" or "mistral"; nullopt for another name.
  static std::optional<ChatTemplate> named(std::string_view name);
  // The template a model of this architecture uses, when it has a tokenizer: Mistral's for
  // MistralForCausalLM, Llama-2's for LlamaForCausalLM; nullopt otherwise.
  static std::optional<ChatTemplate> for_model(io::Architecture architecture, const Tokenizer* tokenizer);
  static std::string names();  // "llama-2, mistral"

  const std::string& name() const { return name_; }
  // Throws ApiError 400 when the roles are out of order or a role is unknown.
  std::vector<std::int32_t> render(const std::vector<ChatMessage>& messages, const Tokenizer& tokenizer) const;

 private:
  explicit ChatTemplate(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace loom::serve
