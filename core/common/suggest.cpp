#include "core/common/suggest.h"

#include <algorithm>

namespace loom {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> closest_match(std::string_view typed, std::span<const std::string> candidates) {
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
