// A pre-tokenizer's regex (tokenizer.json's Split pattern, or GPT-2's), compiled once with PCRE2
// in UTF mode with Unicode properties: \p{L}, \p{N}, \s and (?i:...) follow Unicode, and the
// look-ahead (?!\S) of Llama-3's and Qwen's patterns works as in Oniguruma, which `tokenizers`
// uses.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class SplitPattern {
 public:
  // Throws loom::ModelError with PCRE2's message and the offset of the error in `pattern`.
  explicit SplitPattern(const std::string& pattern);
  SplitPattern(SplitPattern&&) noexcept;
  SplitPattern& operator=(SplitPattern&&) noexcept;
  ~SplitPattern();

  // "Isolated" splitting: every match is a piece and so is each stretch between matches, in
  // order; the pieces concatenate to `text` (valid UTF-8). Empty matches make no piece.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace loom
