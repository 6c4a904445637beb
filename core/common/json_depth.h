// The deepest nesting of arrays and objects Loom accepts in the JSON it reads: request lines,
// config.json, safetensors headers and indexes.
//
// Real inputs nest a few levels. nlohmann's parser takes any depth, but dump(), which the readers
// use for excerpts in error messages, recurses: a line of a few hundred KB of '[' overflowed the
// stack. Each reader passes the parser a callback that refuses anything deeper.
#pragma once

namespace loom {

inline constexpr int kMaxJsonDepth = 64;

}  // namespace loom
