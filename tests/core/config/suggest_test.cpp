#include "core/common/suggest.h"

#include <gtest/gtest.h>

namespace loom {
namespace {

TEST(Suggest, FindsTyposIncludingSwappedLetters) {
  std::vector<std::string> names{"lru", "lfu", "arc"};
  EXPECT_EQ(closest_match("lur", names), "lru");
  EXPECT_EQ(closest_match("ar", names), "arc");
  EXPECT_FALSE(closest_match("lru", names).has_value());  // exact: nothing to suggest
  EXPECT_FALSE(closest_match("scheduler", names).has_value());
  EXPECT_EQ(join_names(names), "lru, lfu, arc");
  EXPECT_EQ(did_you_mean("max_num_seq", std::vector<std::string>{"max_num_seqs", "seed"}),
            " Did you mean 'max_num_seqs'?");
}

}  // namespace
}  // namespace loom
