// The decoder layers [first, end) a model runner holds: all of them, or a pipeline stage's share.
#pragma once

#include <cstddef>

namespace loom {

struct LayerRange {
  std::size_t first = 0, end = 0;
  std::size_t size() const { return end - first; }
};

}  // namespace loom
