// The offload connector's tiers on their own, ordered by the real evictor plugins: the host
// tier's slots and its evictor's choice (LRU, LFU), the disk tier's files, and every way a disk
// file can go bad turning into a miss.
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "disk_tier.h"
#include "host_tier.h"
#include "plugin_test_support.h"

namespace loom::offload {
namespace {

namespace fs = std::filesystem;

// An evictor plugin for a tier of `blocks`, as the engine lends one.
std::shared_ptr<sdk::Evictor> evictor(std::uint64_t blocks, std::string_view name = "lru") {
  PluginPtr<sdk::Evictor> made = testing::make_plugin<sdk::Evictor>(name, testing::engine_info(blocks, 16));
  const PluginDeleter deleter = made.get_deleter();
  return std::shared_ptr<sdk::Evictor>(made.release(), deleter);
}

HostArena plain_memory(std::size_t bytes) {
  return HostArena(new char[bytes], [](char* p) { delete[] p; });
}

std::vector<char> block(std::size_t bytes, char seed) {
  std::vector<char> b(bytes);
  for (std::size_t i = 0; i < bytes; ++i) b[i] = static_cast<char>(seed + 7 * i);
  return b;
}

TEST(HostTier, TheLeastRecentlyUsedBlockIsSpilledWhenFullAndAFindRefreshesABlock) {
  HostTier tier(64, 2, evictor(2), plain_memory(128));
  std::vector<sdk::BlockHash> spilled;
  std::vector<char> spilled_first;
  auto spill = [&](sdk::BlockHash h, std::span<const char> bytes) {
    spilled.push_back(h);
    spilled_first.push_back(bytes[0]);
  };
  for (sdk::BlockHash h : {11u, 22u}) {
    auto slot = tier.insert(h, spill);
    ASSERT_EQ(slot.size(), 64u);
    std::fill(slot.begin(), slot.end(), static_cast<char>(h));
  }
  ASSERT_EQ(tier.find(11).size(), 64u);  // 11 is now the most recent
  auto slot = tier.insert(33, spill);
  std::fill(slot.begin(), slot.end(), 33);
  EXPECT_EQ(spilled, std::vector<sdk::BlockHash>{22});
  EXPECT_EQ(spilled_first, std::vector<char>{22}) << "spilled with its content, before the slot was reused";
  EXPECT_FALSE(tier.contains(22));
  EXPECT_EQ(tier.find(11)[0], 11);
  EXPECT_EQ(tier.find(33)[0], 33);
  EXPECT_TRUE(tier.find(22).empty());
  tier.insert(33, spill);  // present already: its own slot, nothing spilled
  EXPECT_EQ(spilled.size(), 1u);
  EXPECT_EQ(tier.size(), 2u);
  HostTier none(64, 0, evictor(0), plain_memory(0));
  EXPECT_TRUE(none.insert(1, spill).empty());
}

// host_evictor = "lfu": the block used most stays, however long ago its last use.
TEST(HostTier, AnLfuOrderedTierKeepsTheMostUsedBlockWhereLruWouldNot) {
  for (const std::string_view name : {"lru", "lfu"}) {
    HostTier tier(64, 2, evictor(2, name), plain_memory(128));
    std::vector<sdk::BlockHash> spilled;
    auto spill = [&](sdk::BlockHash h, std::span<const char>) { spilled.push_back(h); };
    tier.insert(11, spill);
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(tier.find(11).empty());  // 11: used often, long ago
    tier.insert(22, spill);                                           // 22: once, just now
    tier.insert(33, spill);
    EXPECT_EQ(spilled, std::vector<sdk::BlockHash>{name == "lru" ? 11u : 22u}) << name;
  }
}

class DiskTierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("loom_disk_tier_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DiskTierTest, ABlockReadsBackAsWrittenAndTheOldestFilesGoAtCapacity) {
  const std::size_t bytes = 1000;
  DiskTier tier(dir_, bytes, 3 * (bytes + 64), evictor(3));  // room for 3 files (32-byte header)
  for (sdk::BlockHash h = 1; h <= 3; ++h) ASSERT_TRUE(tier.write(h, block(bytes, static_cast<char>(h))));
  std::vector<char> out(bytes);
  ASSERT_TRUE(tier.read(1, out));  // 1 becomes the most recent
  EXPECT_EQ(out, block(bytes, 1));
  ASSERT_TRUE(tier.write(4, block(bytes, 4)));
  EXPECT_FALSE(tier.contains(2)) << "the least recently used file goes";
  EXPECT_FALSE(fs::exists(tier.path_of(2)));
  EXPECT_TRUE(tier.contains(1));
  EXPECT_TRUE(tier.read(4, out));
  EXPECT_EQ(out, block(bytes, 4));
  EXPECT_EQ(tier.size(), 3u);
}

TEST_F(DiskTierTest, AMissingTruncatedCorruptOrForeignFileIsAMissAndForgotten) {
  const std::size_t bytes = 512;
  DiskTier tier(dir_, bytes, 1 << 20, evictor(DiskTier::files_for(bytes, 1 << 20)));
  for (sdk::BlockHash h = 1; h <= 5; ++h) ASSERT_TRUE(tier.write(h, block(bytes, static_cast<char>(h))));
  fs::remove(tier.path_of(1));                                            // missing
  fs::resize_file(tier.path_of(2), fs::file_size(tier.path_of(2)) - 10);  // truncated
  {
    std::fstream f(tier.path_of(3), std::ios::in | std::ios::out | std::ios::binary);  // one byte flipped
    f.seekp(100);
    f.put('\x55');
  }
  fs::copy_file(tier.path_of(5), tier.path_of(4), fs::copy_options::overwrite_existing);  // another block's file
  std::vector<char> out(bytes, 'x');
  for (sdk::BlockHash h = 1; h <= 4; ++h) {
    EXPECT_FALSE(tier.read(h, out)) << "block " << h;
    EXPECT_FALSE(tier.contains(h)) << "block " << h << " is forgotten after a bad read";
  }
  EXPECT_TRUE(tier.read(5, out));
  EXPECT_EQ(out, block(bytes, 5));
}

TEST_F(DiskTierTest, AWriteThatFailsLeavesNoFileAndAnEarlierRunsFilesAreCleared) {
  const std::size_t bytes = 4096;
  {
    DiskTier first(dir_, bytes, 1 << 20, evictor(DiskTier::files_for(bytes, 1 << 20)));
    ASSERT_TRUE(first.write(7, block(bytes, 7)));
  }
  DiskTier tier(dir_, bytes, 1 << 20, evictor(DiskTier::files_for(bytes, 1 << 20)));
  EXPECT_FALSE(tier.contains(7));
  EXPECT_FALSE(fs::exists(tier.path_of(7))) << "KV is only valid for the run (the model) that computed it";

  // A full disk, as a file-size limit: the write fails part-way and nothing is left.
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  const struct rlimit small { 2048, old.rlim_max };
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const bool written = tier.write(8, block(bytes, 8));
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(written);
  EXPECT_FALSE(tier.contains(8));
  EXPECT_FALSE(fs::exists(tier.path_of(8)));
}

TEST(OffloadChecksum, ChangesWithAnyByteAndTheLength) {
  std::vector<char> bytes = block(1003, 3);
  const std::uint64_t sum = checksum(bytes);
  for (std::size_t i : {0u, 7u, 8u, 500u, 1002u}) {
    bytes[i] ^= 1;
    EXPECT_NE(checksum(bytes), sum) << "byte " << i;
    bytes[i] ^= 1;
  }
  EXPECT_NE(checksum(std::span<const char>(bytes).first(1002)), sum);
  EXPECT_EQ(checksum(bytes), sum);
}

}  // namespace
}  // namespace loom::offload
