#include "core/common/suggest.h"

#include <algorithm>

namespace loom {

namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbouring letters ("lur" -> "lru") each cost one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> closest_match(std::string_view typed, std::span<const std::string> candidates) {
  if (std::find(candidates.begin(), candidates.end(), typed) != candidates.end()) return std::nullopt;
  std::optional<std::string> best;
  std::size_t best_distance = ~std::size_t{0};
  for (const std::string& candidate : candidates) {
    std::size_t d = edit_distance(typed, candidate);
    std::size_t limit = std::max<std::size_t>(1, std::max(typed.size(), candidate.size()) / 3);
    if (d > 0 && d <= limit && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string join_names(std::span<const std::string> names) {
  if (names.empty()) return "(none)";
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string did_you_mean(std::string_view typed, std::span<const std::string> candidates) {
  auto match = closest_match(typed, candidates);
  return match ? " Did you mean '" + *match + "'?" : "";
}

}  // namespace loom
