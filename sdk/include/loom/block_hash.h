// Chained content hash of a full KV block: hash(block i) = H(hash(block i-1), tokens of block i).
//
// Chaining makes a block's hash stand for the whole prefix up to and including it, so one map
// lookup per block finds the longest cached prefix. The mixer is SplitMix64's finalizer (good
// avalanche, no state, no seed), so hashes are identical across runs and machines: a replayed
// workload hits the same blocks.
//
// One definition for every plugin: the allocator's prefix cache, the engine's KvTransfer hashes
// and a KV connector's store all key blocks by these values, so a connector can find what an
// allocator cached and the other way round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "loom/types.h"

namespace loom::sdk {

// The chain's starting value for block 0 (any odd constant that is not a likely token hash).
inline constexpr BlockHash kChainSeed = 0x6a09e667f3bcc909ull;

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Hash of a block holding `tokens`, following the block whose hash is `prev`.
inline BlockHash chain_hash(BlockHash prev, std::span<const TokenId> tokens) {
  std::uint64_t h = mix64(prev + 0x9e3779b97f4a7c15ull);
  for (TokenId t : tokens) {
    // Adding the golden-ratio step before mixing keeps token 0 from being a fixed point.
    h = mix64(h ^ (static_cast<std::uint64_t>(static_cast<std::uint32_t>(t)) + 0x9e3779b97f4a7c15ull));
  }
  return mix64(h ^ tokens.size());
}

// The chained hashes of the full blocks of `tokens` (tokens.size() / block_size of them): a
// sequence's full-block hashes. O(tokens).
inline std::vector<BlockHash> full_block_hashes(std::span<const TokenId> tokens, std::size_t block_size) {
  std::vector<BlockHash> hashes;
  hashes.reserve(tokens.size() / block_size);
  BlockHash prev = kChainSeed;
  for (std::size_t i = 0; i + block_size <= tokens.size(); i += block_size) {
    prev = chain_hash(prev, tokens.subspan(i, block_size));
    hashes.push_back(prev);
  }
  return hashes;
}

}  // namespace loom::sdk
