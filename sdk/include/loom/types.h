// Plain identifiers and small value types shared by every extension point.
#pragma once

#include <cstdint>
#include <limits>

namespace loom::sdk {

using TokenId = std::int32_t;
using SeqId = std::uint64_t;   // unique per sequence for the lifetime of an engine
using BlockId = std::int32_t;  // index of a KV block in the pool, [0, num_blocks)
// Content hash of a full KV block, chained with the hash of the block before it, so that equal
// hashes mean equal token prefixes (up to hash collisions, which allocators must tolerate).
using BlockHash = std::uint64_t;

inline constexpr BlockId kNoBlock = -1;

// Logical time: a counter the engine advances once per step. Policies that age or order by time
// use it instead of the wall clock, so that a replayed workload behaves the same on any machine.
using Tick = std::uint64_t;

}  // namespace loom::sdk
