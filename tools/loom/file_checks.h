// Checks of the files a command reads and writes, made before any work starts, so that a mistake
// costs nothing and never clobbers a user's file. Each failure is a UsageError (exit code 2)
// naming the option, the path and the system's reason.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

namespace loom::cli {

// `path` (given as `option`) exists, is not a directory, and can be opened for reading.
void check_readable_file(const std::filesystem::path& path, const char* option);

// `path` can be written without harming `input` (given as `input_option`; empty: none): it is
// not the same file, its folder exists and is writable, and an existing file is writable.
void check_writable_file(const std::filesystem::path& path, const char* option, const std::filesystem::path& input,
                         const char* input_option);

// `path` can hold a command's output files: an existing writable folder, or one that can be created
// (its nearest existing parent is a writable folder).
void check_output_folder(const std::filesystem::path& path, const char* option);

// Creates `path` (a file or folder a command makes whole, such as a model) through `write`, which
// is given a hidden path beside it to fill; renamed to `path` only when `write` returns, so a
// failure or a kill never leaves something that looks complete. Refused before anything is written
// when `path` exists without `force` (with it, the old one is removed just before the rename), or
// when its file system has less than `bytes` free. Missing parent folders are created. A failed
// write removes what it wrote.
void write_new_output(const std::filesystem::path& path, const char* option, bool force, std::uint64_t bytes,
                      const std::function<void(const std::filesystem::path&)>& write);

// Writes `path` through `write` into a temporary file beside it, renamed over `path` only when
// `write` returns: a failure leaves an existing file as it was and no partial file behind.
void write_file_atomically(const std::filesystem::path& path, const char* option,
                           const std::function<void(std::ostream&)>& write);

}  // namespace loom::cli
