#include "core/tokenizer/stop_strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace loom {
namespace {

using Stops = std::vector<std::string>;

TEST(StopStrings, NoStopsNoMatch) {
  const StopMatch m = find_stop("hello", Stops{});
  EXPECT_FALSE(m.found);
  EXPECT_EQ(m.hold_back, 0u);
}

TEST(StopStrings, StopAtStart) {
  const StopMatch m = find_stop("</s> and more", Stops{"</s>"});
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.position, 0u);
  EXPECT_EQ(m.stop_index, 0u);
  EXPECT_EQ(m.hold_back, 0u);
}

TEST(StopStrings, StopInMiddle) {
  const StopMatch m = find_stop("The end.\n\nUser: hi", Stops{"User:", "\n\n"});
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.position, 8u) << "the earliest occurrence wins, whichever stop it is";
  EXPECT_EQ(m.stop_index, 1u);
}

TEST(StopStrings, TieGoesToFirstListed) {
  const StopMatch m = find_stop("abcdef", Stops{"cde", "cd"});
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.position, 2u);
  EXPECT_EQ(m.stop_index, 0u);
}

TEST(StopStrings, PartialStopIsHeldBack) {
  StopMatch m = find_stop("Hello Us", Stops{"User:"});
  EXPECT_FALSE(m.found);
  EXPECT_EQ(m.hold_back, 2u);
  m = find_stop("Hello U", Stops{"User:", "Hello U!"});
  EXPECT_EQ(m.hold_back, 7u) << "the longest candidate prefix counts";
  m = find_stop("Hello", Stops{"User:"});
  EXPECT_EQ(m.hold_back, 0u);
  m = find_stop("", Stops{"User:"});
  EXPECT_EQ(m.hold_back, 0u);
  m = find_stop("xx", Stops{"", "x"});
  EXPECT_TRUE(m.found) << "empty stop strings are ignored, others still match";
  EXPECT_EQ(m.position, 0u);
  EXPECT_EQ(m.stop_index, 1u);
}

TEST(StopStrings, HoldBackCutsOnCharacterBoundary) {
  // "你好" is two 3-byte characters; a text ending in "你" could begin the stop "你好".
  const StopMatch m = find_stop("ok \xE4\xBD\xA0", Stops{"\xE4\xBD\xA0\xE5\xA5\xBD"});
  EXPECT_FALSE(m.found);
  EXPECT_EQ(m.hold_back, 3u);
}

// Text arriving token by token: the stop string spans several chunks. Emit what is safe at each
// step, as a server would, and check the client sees exactly the text before the stop.
TEST(StopStrings, StopAcrossTokenBoundaries) {
  const std::vector<std::string> chunks = {"Sure", ". Us", "er", ": no", " more"};
  const Stops stops = {"User:"};
  std::string text;
  std::string sent;
  std::size_t searched = 0;
  bool stopped = false;
  for (const std::string& chunk : chunks) {
    text += chunk;
    const std::size_t from = searched >= 4 ? searched - 4 : 0;  // longest stop - 1
    const StopMatch m = find_stop(text, stops, from);
    searched = text.size();
    const std::size_t safe = m.found ? m.position : text.size() - m.hold_back;
    if (safe > sent.size()) sent += text.substr(sent.size(), safe - sent.size());
    if (m.found) {
      stopped = true;
      break;
    }
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(sent, "Sure. ");
}

TEST(StopStrings, SearchFromSkipsEarlierOccurrences) {
  StopMatch m = find_stop("a</s>b</s>", Stops{"</s>"}, 2);
  ASSERT_TRUE(m.found);
  EXPECT_EQ(m.position, 6u);
  m = find_stop("a</s>", Stops{"</s>"}, 10);
  EXPECT_FALSE(m.found);
}

}  // namespace
}  // namespace loom
