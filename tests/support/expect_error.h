// Test helpers for errors: run a callable that must throw E and return its message, so tests
// can check the message names what users need (file, line, key, plugin, fix).
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace loom::testing {

template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong type; message: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

}  // namespace loom::testing

// EXPECT that `text` contains `part`, printing both when it does not.
#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) \
  << "expected to find: " << (part) << "\n             in: " << (text)
