#include "tools/loom/file_checks.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/config/byte_size.h"
#include "loom/error.h"

namespace loom::cli {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void refuse(const char* option, const fs::path& path, const std::string& why) {
  throw UsageError(std::string(option) + " " + path.string() + ": " + why);
}

// `path` itself if it exists, else its nearest existing parent ("." for a relative path none of
// whose parents exist).
fs::path nearest_existing(const fs::path& path) {
  std::error_code ec;
  fs::path existing = path;
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  return existing.empty() ? fs::path(".") : existing;
}

}  // namespace

void check_readable_file(const fs::path& path, const char* option) {
  std::error_code ec;
  if (!fs::exists(path, ec)) refuse(option, path, std::string("cannot read it: ") + std::strerror(ENOENT));
  if (fs::is_directory(path, ec)) refuse(option, path, "is a folder; give a file");
  std::ifstream in(path);
  if (!in) refuse(option, path, std::string("cannot read it: ") + std::strerror(errno));
}

void check_writable_file(const fs::path& path, const char* option, const fs::path& input, const char* input_option) {
  std::error_code ec;
  if (!input.empty() && fs::exists(path, ec) && fs::equivalent(path, input, ec))
    refuse(option, path,
           std::string("is the ") + input_option +
               " file; the results would overwrite what they are read from. "
               "Write them to another file");
  if (fs::is_directory(path, ec)) refuse(option, path, "is a folder; give a file name");
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec)) refuse(option, path, "its folder " + folder.string() + " does not exist");
  if (fs::exists(path, ec) ? ::access(path.c_str(), W_OK) != 0 : ::access(folder.c_str(), W_OK) != 0)
    refuse(option, path, std::string("cannot write it: ") + std::strerror(errno));
}

void check_output_folder(const fs::path& path, const char* option) {
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec))
    refuse(option, path, "is a file; give a folder (it is created when missing)");
  const fs::path existing = nearest_existing(path);
  if (!fs::is_directory(existing, ec)) refuse(option, path, existing.string() + " is a file, not a folder");
  if (::access(existing.c_str(), W_OK) != 0)
    refuse(option, path, "cannot write in " + existing.string() + ": " + std::strerror(errno));
}

void write_new_output(const fs::path& path, const char* option, bool force, std::uint64_t bytes,
                      const std::function<void(const fs::path&)>& write) {
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(path, ec));
  if (exists && !force) refuse(option, path, "already exists; add --force to replace it, or choose another name");
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  check_output_folder(folder, option);  // created below when missing, as mkdir -p would
  const fs::space_info space = fs::space(nearest_existing(folder), ec);
  if (!ec && space.available < bytes)
    refuse(option, path,
           "needs " + format_byte_size(bytes) + " and its file system has " + format_byte_size(space.available) +
               " free; choose a smaller shape or another place");
  // Hidden and named after its target, so a run killed mid-write leaves no model-looking output,
  // and the next run of the same command clears it.
  const fs::path partial = folder / std::string(".").append(path.filename().string()).append(".loom-partial");
  fs::remove_all(partial, ec);
  fs::create_directories(folder, ec);
  if (ec) refuse(option, path, "cannot create its folder " + folder.string() + ": " + ec.message());
  try {
    write(partial);
    if (exists) {
      fs::remove_all(path, ec);
      if (ec) refuse(option, path, "cannot remove it to replace it: " + ec.message());
    }
    fs::rename(partial, path);
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
}

void write_file_atomically(const fs::path& path, const char* option, const std::function<void(std::ostream&)>& write) {
  const fs::path partial = path.string() + ".partial";
  try {
    {
      std::ofstream out(partial);
      if (!out) refuse(option, path, std::string("cannot write it: ") + std::strerror(errno));
      write(out);
      out.flush();
      if (!out) refuse(option, path, "writing it failed (is the disk full?)");
    }
    fs::rename(partial, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(partial, ec);
    throw;
  }
}

}  // namespace loom::cli
