// Stop strings: where, in the text generated so far, the first stop string occurs, and how much
// of the text's end must be held back from the client because it could be the start of one.
//
// Pure and byte-based. The caller truncates the output at `position` when `found`; otherwise it
// may send everything except the last `hold_back` bytes. For valid UTF-8 text and stop strings,
// both cut points fall on character boundaries.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace loom {

struct StopMatch {
  // A stop string occurs in the text.
  bool found = false;
  // Byte offset where the earliest occurrence begins (the text is cut here); 0 when !found.
  std::size_t position = 0;
  // Which stop string (index into the list); on a tie in position, the lower index.
  std::size_t stop_index = 0;
  // When !found: the length of the longest end of the text that is a proper prefix of some stop
  // string, i.e. what a later token could turn into a match. 0 when found.
  std::size_t hold_back = 0;
};

// Looks for `stops` in `text`. Occurrences beginning before `search_from` are ignored, so a
// caller that has already searched its old text passes old_size - (longest stop - 1) (floored at
// 0) and each call costs O(new text + longest stop) per stop. Empty stop strings are ignored.
StopMatch find_stop(std::string_view text, std::span<const std::string> stops,
                    std::size_t search_from = 0);

}  // namespace loom
