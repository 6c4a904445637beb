// A whole file mapped read-only into memory (mmap), unmapped when the object dies.
//
// Move-only. The bytes stay valid for the object's lifetime; holders that hand out pointers into
// the mapping share it through std::shared_ptr<const MappedFile>.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace loom::io {

class MappedFile {
 public:
  // Maps `path`. Throws loom::ModelError naming the file when it is missing, not a regular file,
  // or cannot be opened or mapped. An empty file maps to size() == 0 and data() == nullptr.
  static MappedFile open(const std::filesystem::path& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  void release() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace loom::io
