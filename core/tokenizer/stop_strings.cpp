#include "core/tokenizer/stop_strings.h"

#include <algorithm>

namespace loom {

StopMatch find_stop(std::string_view text, std::span<const std::string> stops,
                    std::size_t search_from) {
  StopMatch match;
  for (std::size_t i = 0; i < stops.size(); ++i) {
    const std::string_view stop = stops[i];
    if (stop.empty() || search_from >= text.size()) continue;
    const std::size_t at = text.find(stop, search_from);
    if (at == std::string_view::npos) continue;
    if (!match.found || at < match.position) {
      match.found = true;
      match.position = at;
      match.stop_index = i;
    }
  }
  if (match.found) return match;

  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    // Longest proper prefix of `stop` that the text ends with; shorter ones cannot beat the best.
    for (std::size_t len = std::min(stop.size() - 1, text.size()); len > match.hold_back; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        match.hold_back = len;
        break;
      }
    }
  }
  return match;
}

}  // namespace loom
