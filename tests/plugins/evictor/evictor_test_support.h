// Small helpers for evictor tests: load an evictor by name and drive it the way the paged
// allocator does when a cached candidate is hit by a prefix lookup.
#pragma once

#include <string>
#include <string_view>

#include "plugins/plugin_test_support.h"

namespace loom::testing {

inline PluginPtr<sdk::Evictor> make_evictor(std::string_view name, std::uint64_t num_blocks,
                                            RawSection section = {}) {
  return make_plugin<sdk::Evictor>(name, engine_info(num_blocks, 4), std::move(section));
}

// A section with one string key, as `[evictor] key = "value"` would give.
inline RawSection string_key(std::string key, std::string value) {
  RawSection section;
  section.entries[std::move(key)] = RawEntry{std::move(value), "test"};
  return section;
}

// A prefix hit on candidate `block`: the allocator reports the hit, takes the block back into
// use, and later (when the sequence finishes) makes it a candidate again.
inline void reuse(sdk::Evictor& e, sdk::BlockId block, sdk::BlockHash hash) {
  e.on_hit(hash, 0);
  e.remove_candidate(block, 0);
  e.add_candidate(block, hash, 0);
}

}  // namespace loom::testing
