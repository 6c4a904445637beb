// Reading one .safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
//
// Opening validates everything before any tensor is handed out: header length within the file,
// valid JSON, supported dtype (F32, F16, BF16), shape product * dtype size == end - begin, every
// range inside the data section and no two ranges overlapping. Any failure is a loom::ModelError
// naming the file and the tensor. Tensor data is read in place from the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/mapped_file.h"

namespace loom::io {

// A tensor inside a mapped file. `data` points into the mapping (not necessarily aligned to the
// element size) and stays valid as long as `mapping` (or the file object it came from) lives.
struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  const std::byte* data = nullptr;
  std::size_t byte_size = 0;
  std::filesystem::path file;
  std::shared_ptr<const MappedFile> mapping;

  std::int64_t numel() const { return static_cast<std::int64_t>(byte_size / dtype_size(dtype)); }
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws loom::ModelError on any defect (see the file comment).
  static SafetensorsFile open(const std::filesystem::path& path);
  // Validates a whole file already in memory, exactly as open() does; `path` names it in
  // messages. The views point into `bytes` (their `mapping` is empty): the caller keeps the
  // bytes alive and unchanged while the views are used.
  static SafetensorsFile parse(std::span<const std::byte> bytes, const std::filesystem::path& path);

  // All tensors, ordered by their position in the data section.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  // The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }
  std::size_t file_size() const { return size_; }

 private:
  std::shared_ptr<const MappedFile> mapping_;  // empty for parse()
  std::filesystem::path path_;
  std::size_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace loom::io
