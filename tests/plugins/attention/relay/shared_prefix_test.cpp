// attention/relay's choice of the shared prefix: the group of sequences starting with the same
// block whose sharing saves the most block reads, only full blocks already in the cache, only the
// run of block ids common to every member.
#include "shared_prefix.h"

#include <gtest/gtest.h>

namespace loom_attention_relay {
namespace {

using loom::sdk::AttentionSeq;
using Table = std::vector<std::int32_t>;

AttentionSeq seq(const Table& table, std::uint32_t ctx_len, std::uint32_t q_len) {
  AttentionSeq s;
  s.q_len = q_len;
  s.ctx_len = ctx_len;
  s.block_table = table;
  return s;
}

TEST(RelaySharedPrefix, TakesTheBlocksCommonToEveryMemberAndCachedBeforeTheirNewTokens) {
  const Table a = {7, 8, 9, 20}, b = {7, 8, 9, 21}, c = {7, 8, 30}, d = {5, 6};
  // Block size 4: a decodes at 14 (blocks 0-2 cached), b decodes at 13 (0-2), c prefills 9-11
  // (blocks 0-1 cached: block 2 holds its new tokens), d shares nothing.
  const std::vector<AttentionSeq> seqs = {seq(a, 15, 1), seq(d, 6, 1), seq(b, 14, 1), seq(c, 12, 3)};
  const PrefixChoice choice = choose_shared_prefix(seqs, 4);
  EXPECT_EQ(choice.blocks, (Table{7, 8}));
  EXPECT_EQ(choice.members, (std::vector<int>{0, 2, 3}));
}

TEST(RelaySharedPrefix, PrefersTheGroupThatSavesMoreReadsAndSharesNothingAlone) {
  const Table a = {1, 2, 3, 4}, b = {1, 2, 3, 4}, x = {9, 10}, y = {9, 11}, z = {9, 12};
  // {a, b}: 1 x 4 blocks saved; {x, y, z}: 2 x 1. Block size 2, all decoding past their tables' ends.
  std::vector<AttentionSeq> seqs = {seq(x, 4, 1), seq(a, 9, 1), seq(y, 4, 1), seq(b, 9, 1), seq(z, 4, 1)};
  PrefixChoice choice = choose_shared_prefix(seqs, 2);
  EXPECT_EQ(choice.blocks, (Table{1, 2, 3, 4}));
  EXPECT_EQ(choice.members, (std::vector<int>{1, 3}));
  seqs = {seq(a, 9, 1), seq(x, 4, 1)};
  choice = choose_shared_prefix(seqs, 2);
  EXPECT_TRUE(choice.blocks.empty());
  EXPECT_TRUE(choice.members.empty());
  // A prompt's first chunk: nothing of it cached yet.
  seqs = {seq(a, 8, 8), seq(b, 8, 8)};
  EXPECT_TRUE(choose_shared_prefix(seqs, 2).members.empty());
}

TEST(RelaySharedPrefix, APinnedPrefixTakesExactlyItsBlocksAndTheSequencesThatStartWithAllOfThem) {
  const Table pinned = {7, 8};
  const Table a = {7, 8, 9, 20}, b = {7, 8, 9, 21}, c = {7, 30}, d = {7, 8, 40}, e = {1, 2, 3};
  // Block size 4. a, b share three blocks but only the pinned two are taken; c diverges inside
  // the pinned prefix; d has the pinned blocks but is prefilling into block 1 (not cached yet);
  // e shares nothing.
  std::vector<AttentionSeq> seqs = {seq(a, 15, 1), seq(c, 6, 1), seq(b, 14, 1), seq(d, 8, 2), seq(e, 12, 1)};
  PrefixChoice choice = choose_shared_prefix(seqs, 4, {}, pinned);
  EXPECT_EQ(choice.blocks, pinned);
  EXPECT_EQ(choice.members, (std::vector<int>{0, 2}));
  // A member the kernel cannot split is left out, and one member alone shares nothing.
  const std::vector<std::uint8_t> eligible = {1, 1, 0, 1, 1};
  choice = choose_shared_prefix(seqs, 4, eligible, pinned);
  EXPECT_TRUE(choice.blocks.empty());
  EXPECT_TRUE(choice.members.empty());
}

}  // namespace
}  // namespace loom_attention_relay
