// Streaming writer of one .safetensors file: the header is written up front from the declared
// tensors, then each tensor's data is appended in declaration order, in pieces of any size, so
// a model far larger than memory can be written. The JSON header is padded with spaces so the
// data section starts at a multiple of 8 bytes (F32 tensors are then 4-byte aligned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/io/dtype.h"

namespace loom::io {

struct TensorHeader {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
};

class SafetensorsWriter {
 public:
  // Creates `path` (replacing it) and writes the header. Throws loom::Error if the file cannot
  // be written, loom::ModelError on a duplicate name or negative dimension.
  SafetensorsWriter(const std::filesystem::path& path, std::vector<TensorHeader> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  // Closes the file; an unfinished file is left as it is (incomplete).
  ~SafetensorsWriter();

  // Appends raw bytes of the current tensor. Precondition: they do not run past its end
  // (std::logic_error otherwise); a tensor that is complete moves the writer to the next one.
  void write_bytes(std::span<const std::byte> bytes);
  // Appends fp32 values, converted to the current tensor's dtype; same precondition.
  void write_fp32(std::span<const float> values);
  // Checks that every tensor was written in full (std::logic_error otherwise) and closes the
  // file, throwing loom::Error on an I/O failure.
  void finish();

  // Total file size this writer produces.
  std::uint64_t file_size() const { return file_size_; }

 private:
  void advance(std::size_t bytes);
  void put(const void* data, std::size_t bytes);

  std::filesystem::path path_;
  std::FILE* out_ = nullptr;
  std::vector<std::uint64_t> sizes_;  // bytes per tensor, declaration order
  std::vector<DType> dtypes_;
  std::size_t current_ = 0;
  std::uint64_t written_in_current_ = 0;
  std::uint64_t file_size_ = 0;
  std::vector<std::byte> scratch_;
};

}  // namespace loom::io
