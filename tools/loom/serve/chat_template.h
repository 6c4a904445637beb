// Chat templates: a conversation of messages turned into the prompt's token ids, ending where
// the assistant's reply begins. Built in: Llama-2-chat's [INST] <<SYS>> format and
// Mistral-Instruct's (sentencepiece tokenizers), Llama-3-Instruct's header format and ChatML
// (Qwen2 with its default system message, Qwen3 without) for tokenizer.json models.
// Rendered at the token level: BOS, EOS and the templates' special tokens are ids, never text
// that could be tokenized as "<s>"; each text segment is encoded by the tokenizer.
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
  // One of names(); nullopt for another name.
  static std::optional<ChatTemplate> named(std::string_view name);
  // The template a model of this architecture uses, when it has a tokenizer: Mistral's for
  // MistralForCausalLM; for LlamaForCausalLM Llama-3's when the tokenizer has its header tokens,
  // else Llama-2's; Qwen2's for Qwen2(Moe)ForCausalLM, ChatML for Qwen3ForCausalLM; nullopt
  // otherwise, and when the tokenizer lacks the chosen template's special tokens.
  static std::optional<ChatTemplate> for_model(io::Architecture architecture, const Tokenizer* tokenizer);
  static std::string names();  // "llama-2, llama-3, mistral, qwen2, chatml"

  const std::string& name() const { return name_; }
  // The special tokens this template writes that `tokenizer` lacks ("<|im_start|>, <|im_end|>"),
  // or "" when it has them all: checked when the server starts (render() answers 400 otherwise).
  std::string missing_tokens(const Tokenizer& tokenizer) const;
  // Throws ApiError 400 when the roles are out of order or a role is unknown.
  std::vector<std::int32_t> render(const std::vector<ChatMessage>& messages, const Tokenizer& tokenizer) const;

 private:
  explicit ChatTemplate(std::string name) : name_(std::move(name)) {}
  std::vector<std::int32_t> render_llama3(const std::vector<ChatMessage>& messages, const Tokenizer& tokenizer) const;
  std::vector<std::int32_t> render_chatml(const std::vector<ChatMessage>& messages, const Tokenizer& tokenizer) const;
  std::string name_;
};

}  // namespace loom::serve
