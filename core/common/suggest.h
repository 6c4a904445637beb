// "Did you mean ...?" for names a user mistyped: config keys, sections, plugin names.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

// The candidate closest to `typed` by edit distance, when it is close enough to be a likely
// typo (at most a third of the longer name's length, and at least one edit).
std::optional<std::string> closest_match(std::string_view typed, std::span<const std::string> candidates);

// "a, b, c" (or "(none)").
std::string join_names(std::span<const std::string> names);

// " Did you mean 'x'?" or "".
std::string did_you_mean(std::string_view typed, std::span<const std::string> candidates);

}  // namespace loom
