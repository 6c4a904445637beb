#include "core/config/byte_size.h"

#include <gtest/gtest.h>

namespace loom {
namespace {

TEST(ByteSize, AcceptsIntegersAndUnits) {
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_byte_size("16GiB"), 16ull << 30);
  EXPECT_EQ(parse_byte_size("2GB"), 2000000000ull);
  EXPECT_EQ(parse_byte_size("1.5 KiB"), 1536u);
  EXPECT_EQ(parse_byte_size("3kb"), 3000u);
  EXPECT_EQ(parse_byte_size(" 7 B "), 7u);
}

TEST(ByteSize, RefusesWhatIsNotASize) {
  for (const char* bad : {"", "MiB", "-1", "12 parsecs", "1..5GiB", "0x10", "1e9"})
    EXPECT_FALSE(parse_byte_size(bad).has_value()) << bad;
}

TEST(ByteSize, FormatsForPeople) {
  EXPECT_EQ(format_byte_size(512), "512 B");
  EXPECT_EQ(format_byte_size(1536), "1.5 KiB");
  EXPECT_EQ(format_byte_size(16ull << 30), "16.0 GiB");
}

}  // namespace
}  // namespace loom
