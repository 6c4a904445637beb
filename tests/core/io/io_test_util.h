// Helpers for the core/io tests: scratch directories, hand-made (corrupt) safetensors files, and
// the shared models folder.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "loom/error.h"

namespace loom::io::test {

// A fresh directory under the system temp folder, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loom-io-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file made by hand: the 8-byte length of `header`, `header`, then `data`.
inline void write_raw_safetensors(const std::filesystem::path& path, const std::string& header,
                                  const std::string& data, std::uint64_t header_len_override = 0) {
  std::uint64_t len = header_len_override ? header_len_override : header.size();
  std::string bytes(reinterpret_cast<const char*>(&len), 8);
  write_file(path, bytes + header + data);
}

// The shared models folder: $LOOM_TEST_MODELS, else the build-time default.
inline std::filesystem::path models_dir() {
  if (const char* env = std::getenv("LOOM_TEST_MODELS"); env != nullptr && *env != '\0') return env;
  return LOOM_TEST_MODELS_DEFAULT;
}

}  // namespace loom::io::test

// Expects `statement` to throw loom::ModelError whose message contains `substring`.
#define EXPECT_MODEL_ERROR(statement, substring)                                            \
  do {                                                                                      \
    try {                                                                                   \
      statement;                                                                            \
      ADD_FAILURE() << "expected loom::ModelError containing \"" << (substring) << "\"";    \
    } catch (const loom::ModelError& e) {                                                   \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)                   \
          << "message: " << e.what() << "\nexpected to contain: " << (substring);           \
    }                                                                                       \
  } while (0)
