// A model's tokenizer: text to token ids and back. Two kinds, chosen by the file given:
//  - sentencepiece (`tokenizer.model`: Llama-2, Mistral), with byte-fallback tokens <0xHH>;
//  - byte-level BPE (Hugging Face `tokenizer.json`: Llama-3, Qwen2/3, GPT-2), whose tokens are
//    byte strings that may hold part of a character (see byte_level_bpe.h).
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
  // Loads a serialized sentencepiece model, or a tokenizer.json when the name ends in ".json".
  // Throws loom::ModelError naming `path` and the reason when the file is missing, unreadable,
  // not a tokenizer of its kind (or one Loom does not read), or has an empty vocabulary.
  static Tokenizer load(const std::filesystem::path& path);
  // The tokenizer in a model folder: tokenizer.model, else tokenizer.json; "" when it has neither
  // (or `model_path` is a file).
  static std::filesystem::path find_beside(const std::filesystem::path& model_path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // The ids of `text`, preceded by bos_id() when `add_bos` is true (and the model has a BOS).
  // A byte-level tokenizer also matches its added tokens (<|eot_id|>) written in the text, as
  // Hugging Face's does, and throws loom::RequestError for text that is not valid UTF-8.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;

  // The text of `ids`, exactly as the tokenizer's own library decodes it: control tokens (BOS,
  // EOS, special added tokens) vanish; sentencepiece drops the leading-space marker of the first
  // piece; bytes (byte tokens, byte-level pieces) are joined into UTF-8 and each maximal part
  // that is not a valid character becomes U+FFFD.
  std::string decode(std::span<const std::int32_t> ids) const;

  // True for a byte-level BPE tokenizer: its pieces are byte strings (token_bytes), it has no
  // byte_value tokens and decoding is the concatenation of token_bytes read as UTF-8.
  bool byte_level() const;
  // What one token stands for as bytes, for streaming and log-probability text: a byte token's
  // byte, a sentencepiece piece with its space marker as a space, a byte-level piece's bytes (maybe
  // part of a character); a control token's piece as written ("<s>", "<|eot_id|>").
  std::string token_bytes(std::int32_t id) const;
  // The id of a token written exactly `content` ("<|eot_id|>", "<|im_start|>"), as chat templates
  // need; nullopt when there is none.
  std::optional<std::int32_t> token_id(std::string_view content) const;

  std::int32_t vocab_size() const;
  // Why this tokenizer cannot serve a model of `model_vocab` tokens (it has more pieces: it
  // belongs to another model), or "" when it can.
  std::string mismatch(std::int64_t model_vocab) const;
  // -1 when the model defines none.
  std::int32_t bos_id() const;
  std::int32_t eos_id() const;

  // The piece as stored in the model ("▁Hello", "<0xE4>", "<s>", "Ġhello"); valid while *this lives.
  std::string_view piece(std::int32_t id) const;
  // A control token (BOS, EOS, a special added token, ...): decodes to nothing.
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
