// A byte-level BPE tokenizer read from Hugging Face's `tokenizer.json`: the kind Llama-3, Qwen2/3
// and GPT-2 ship. Encoding follows the `tokenizers` library step for step:
//   1. added tokens (<|eot_id|>, <|im_start|>, ...) are cut out of the text first, leftmost and
//      longest match first, each becoming its own id;
//   2. the rest is normalized (NFC where the file asks for it);
//   3. the pre-tokenizer's regex splits it into words (PCRE2 with Unicode properties, so \p{L},
//      \p{N}, (?i:...) and the look-ahead of these patterns mean what they mean in Rust's regex);
//   4. each word's UTF-8 bytes are spelled with GPT-2's printable stand-ins for bytes and merged by
//      the merges' ranks (with `ignore_merges`, a word that is itself in the vocabulary is taken
//      whole, as Llama-3 asks);
//   5. the post-processor's template may put a BOS in front.
// Decoding maps each token's characters back to bytes and reads them as UTF-8, replacing each
// maximal invalid part with U+FFFD (Rust's from_utf8_lossy, as `tokenizers` does).
//
// A tokenizer.json outside this family (WordPiece, Unigram, Metaspace pre-tokenizers, dropout,
// word suffixes, a normalizer other than NFC) is refused at load, naming what it has: guessing
// would give silently different ids.
//
// Immutable after load: one instance may be shared by every thread.
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

class ByteLevelBpe {
 public:
  // Throws loom::ModelError naming `path`, and the JSON key where it is about the content.
  static ByteLevelBpe load(const std::filesystem::path& path);

  ByteLevelBpe(ByteLevelBpe&&) noexcept;
  ByteLevelBpe& operator=(ByteLevelBpe&&) noexcept;
  ~ByteLevelBpe();

  // `add_special`: the post-processor's tokens (BOS) around the text, as encode(add_special_tokens).
  // Added tokens written in the text are always matched, as `tokenizers` does by default.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special) const;
  // Ids must be in range (the caller checks). Special tokens vanish when `skip_special`.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special) const;
  // The bytes a token stands for: its UTF-8 text for an added token, possibly part of a character
  // for the others.
  std::string token_bytes(std::int32_t id) const;

  std::int32_t vocab_size() const;
  std::string_view piece(std::int32_t id) const;  // as stored: "Ġhello", "<|eot_id|>"
  bool is_special(std::int32_t id) const;         // an added token marked special
  std::optional<std::int32_t> added_token_id(std::string_view content) const;
  std::int32_t bos_id() const;  // -1 when the post-processor adds none
  std::int32_t eos_id() const;  // from tokenizer_config.json beside the file; -1 without one

 private:
  struct Impl;
  explicit ByteLevelBpe(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
