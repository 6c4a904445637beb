// UTF-8 helpers for byte-level tokenizers, whose tokens may hold part of a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace loom::utf8 {

// `bytes` as valid UTF-8: each maximal invalid part (a stray continuation byte, a lead byte whose
// sequence breaks off, an overlong or surrogate form) becomes one U+FFFD. The same output as Rust's
// String::from_utf8_lossy and Python's bytes.decode("utf-8", "replace").
std::string lossy(std::string_view bytes);

// Whether `bytes` is valid UTF-8 (the same rules as lossy(): lossy(bytes) == bytes exactly then).
bool is_valid(std::string_view bytes);

// How many leading bytes of `bytes` are final: everything but a trailing part that is a valid
// start of a character still missing bytes (which more bytes could complete).
std::size_t settled_prefix(std::string_view bytes);

// Appends the UTF-8 encoding of a code point (at most U+10FFFF, not a surrogate).
void append(std::string& out, char32_t code_point);

// Decodes the code point starting at bytes[i] of valid UTF-8 and advances i past it.
char32_t next(std::string_view bytes, std::size_t& i);

}  // namespace loom::utf8
