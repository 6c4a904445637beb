// A sentencepiece tokenizer (Llama-style `tokenizer.model`): text to token ids and back.
//
// Immutable after load, so one Tokenizer may be shared by every sequence and thread.
// Move-only; the sentencepiece processor stays hidden in the implementation file.
//
// Ids are int32_t. Every method taking an id checks it is in [0, vocab_size()) and throws
// loom::RequestError naming the id and the vocabulary size otherwise: a bad id comes from a
// request (a prompt given as ids) or from a bug, and must fail that request alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class Tokenizer {
 public:
  // Loads a serialized sentencepiece model. Throws loom::ModelError naming `path` and the reason
  // when the file is missing, unreadable, not a sentencepiece model, or has an empty vocabulary.
  static Tokenizer load(const std::filesystem::path& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // The ids of `text`, preceded by bos_id() when `add_bos` is true (and the model has a BOS).
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;

  // The text of `ids`, exactly as sentencepiece decodes it: control tokens (BOS, EOS) vanish,
  // the leading-space marker of the first piece is dropped, consecutive byte tokens are joined
  // into UTF-8 and each byte that is not part of a valid character becomes U+FFFD.
  std::string decode(std::span<const std::int32_t> ids) const;

  std::int32_t vocab_size() const;
  // Why this tokenizer cannot serve a model of `model_vocab` tokens (it has more pieces: it
  // belongs to another model), or "" when it can.
  std::string mismatch(std::int64_t model_vocab) const;
  // -1 when the model defines none.
  std::int32_t bos_id() const;
  std::int32_t eos_id() const;

  // The piece as stored in the model ("▁Hello", "<0xE4>", "<s>"); valid while *this lives.
  std::string_view piece(std::int32_t id) const;
  // A control token (BOS, EOS, ...): decodes to nothing.
  bool is_control(std::int32_t id) const;
  // The byte a byte-fallback token (<0xHH>) stands for; nullopt for every other token.
  std::optional<std::uint8_t> byte_value(std::int32_t id) const;

  // Throws loom::RequestError unless 0 <= id < vocab_size().
  void check_id(std::int32_t id) const;

  const std::filesystem::path& path() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
