// Checks of the files a command reads and writes, made before any work starts, so that a mistake
// costs nothing and never clobbers a user's file. Each failure is a UsageError (exit code 2)
// naming the option, the path and the system's reason.
#pragma once

#include <filesystem>
#include <functional>

namespace loom::cli {

// `path` (given as `option`) exists, is not a directory, and can be opened for reading.
void check_readable_file(const std::filesystem::path& path, const char* option);

// `path` can be written without harming `input` (given as `input_option`; empty: none): it is
// not the same file, its folder exists and is writable, and an existing file is writable.
void check_writable_file(const std::filesystem::path& path, const char* option, const std::filesystem::path& input,
                         const char* input_option);

// `path` does not exist yet, unless `force` (then it is removed first). For outputs a command
// creates whole (a model folder or file).
void make_room_for_new_output(const std::filesystem::path& path, const char* option, bool force);

// Writes `path` through `write` into a temporary file beside it, renamed over `path` only when
// `write` returns: a failure leaves an existing file as it was and no partial file behind.
void write_file_atomically(const std::filesystem::path& path, const char* option,
                           const std::function<void(std::ostream&)>& write);

}  // namespace loom::cli
