#include "shared_prefix.h"

#include <algorithm>
#include <map>

namespace loom_attention_relay {

using loom::sdk::AttentionSeq;

PrefixChoice choose_shared_prefix(std::span<const AttentionSeq> seqs, std::uint32_t block_size,
                                  std::span<const std::uint8_t> eligible, std::span<const loom::sdk::BlockId> pinned) {
  // Full blocks wholly before a sequence's new tokens.
  auto cached_blocks = [&](const AttentionSeq& s) {
    return std::min<std::size_t>((s.ctx_len - s.q_len) / block_size, s.block_table.size());
  };
  auto may_join = [&](std::size_t i) { return eligible.empty() || eligible[i] != 0; };
  if (!pinned.empty()) {
    PrefixChoice choice;
    for (std::size_t i = 0; i < seqs.size(); ++i)
      if (may_join(i) && cached_blocks(seqs[i]) >= pinned.size() &&
          std::equal(pinned.begin(), pinned.end(), seqs[i].block_table.begin()))
        choice.members.push_back(static_cast<int>(i));
    if (choice.members.size() < 2) return {};
    choice.blocks.assign(pinned.begin(), pinned.end());
    return choice;
  }
  std::map<std::int32_t, std::vector<int>> by_first_block;
  for (std::size_t i = 0; i < seqs.size(); ++i)
    if (cached_blocks(seqs[i]) > 0 && may_join(i))
      by_first_block[seqs[i].block_table[0]].push_back(static_cast<int>(i));
  PrefixChoice best;
  std::size_t best_saving = 0;
  int best_first = 0;
  for (const auto& [first_block, members] : by_first_block) {
    if (members.size() < 2) continue;
    const AttentionSeq& lead = seqs[static_cast<std::size_t>(members[0])];
    std::size_t common = cached_blocks(lead);
    for (int m : members) {
      const AttentionSeq& s = seqs[static_cast<std::size_t>(m)];
      std::size_t n = 0;
      const std::size_t limit = std::min(common, cached_blocks(s));
      while (n < limit && s.block_table[n] == lead.block_table[n]) ++n;
      common = n;
    }
    const std::size_t saving = (members.size() - 1) * common;
    if (saving > best_saving || (saving == best_saving && saving > 0 && members[0] < best_first)) {
      best_saving = saving;
      best_first = members[0];
      best.blocks.assign(lead.block_table.begin(), lead.block_table.begin() + static_cast<std::ptrdiff_t>(common));
      best.members = members;
    }
  }
  return best;
}

}  // namespace loom_attention_relay
