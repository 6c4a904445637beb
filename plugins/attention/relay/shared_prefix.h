// Which prefix a step's sequences share, for relay attention: the leading cache blocks that
// several sequences have in common (the prefix cache gives a shared prompt the same block ids),
// each block entirely before every one of those sequences' new tokens, so it is in the cache
// already. Pure: plain data in, plain data out.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "loom/attention.h"

namespace loom_attention_relay {

struct PrefixChoice {
  std::vector<std::int32_t> blocks;  // the shared leading block ids
  std::vector<int> members;          // indexes into the step's sequences, increasing
};

// Without a pinned prefix: among groups of sequences that start with the same block, the one
// whose sharing saves the most block reads ((members - 1) x common blocks); ties go to the group
// of the lowest first member. With one (the blocks of a system prompt the engine holds): the
// sequences whose tables start with all of them, and those blocks. Nothing (no blocks, no
// members) when fewer than two sequences share. eligible: empty, or per sequence whether it may
// be a member (a kernel that cannot split its context says no).
PrefixChoice choose_shared_prefix(std::span<const loom::sdk::AttentionSeq> seqs, std::uint32_t block_size,
                                  std::span<const std::uint8_t> eligible = {},
                                  std::span<const loom::sdk::BlockId> pinned = {});

}  // namespace loom_attention_relay
