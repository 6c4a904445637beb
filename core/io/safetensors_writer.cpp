#include "core/io/safetensors_writer.h"

#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/io/tensor_convert.h"
#include "loom/error.h"

namespace loom::io {

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path,
                                     std::vector<TensorHeader> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path) {
  // nlohmann::ordered_json keeps declaration order, so the file reads in the order written.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const TensorHeader& t : tensors) {
    if (!seen.insert(t.name).second)
      throw ModelError("safetensors writer '" + path.string() + "': duplicate tensor '" + t.name + "'");
    const auto numel = shape_numel(t.shape);
    if (!numel)
      throw ModelError("safetensors writer '" + path.string() + "': tensor '" + t.name +
                       "' has an invalid shape " + shape_to_string(t.shape));
    const std::uint64_t bytes = static_cast<std::uint64_t>(*numel) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    sizes_.push_back(bytes);
    dtypes_.push_back(t.dtype);
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  const std::uint64_t header_len = text.size();
  file_size_ = 8 + header_len + offset;

  out_ = std::fopen(path.c_str(), "wb");
  if (out_ == nullptr)
    throw Error("cannot create '" + path.string() + "': " + std::strerror(errno));
  std::setvbuf(out_, nullptr, _IOFBF, 1 << 22);
  put(&header_len, 8);
  put(text.data(), text.size());
  while (current_ < sizes_.size() && sizes_[current_] == 0) ++current_;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (out_ != nullptr) std::fclose(out_);
}

void SafetensorsWriter::put(const void* data, std::size_t bytes) {
  if (bytes != 0 && std::fwrite(data, 1, bytes, out_) != bytes)
    throw Error("writing '" + path_.string() + "' failed: " + std::strerror(errno) +
                " (disk full?)");
}

void SafetensorsWriter::advance(std::size_t bytes) {
  if (current_ >= sizes_.size() || written_in_current_ + bytes > sizes_[current_])
    throw std::logic_error("SafetensorsWriter: data written past the end of the current tensor");
}

void SafetensorsWriter::write_bytes(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  advance(bytes.size());
  put(bytes.data(), bytes.size());
  written_in_current_ += bytes.size();
  while (current_ < sizes_.size() && written_in_current_ == sizes_[current_]) {
    ++current_;
    written_in_current_ = 0;
  }
}

void SafetensorsWriter::write_fp32(std::span<const float> values) {
  if (values.empty()) return;
  if (current_ >= sizes_.size())
    throw std::logic_error("SafetensorsWriter: data written after the last tensor");
  const DType dtype = dtypes_[current_];
  scratch_.resize(values.size() * dtype_size(dtype));
  convert_from_fp32(dtype, values.data(), values.size(), scratch_.data());
  write_bytes(scratch_);
}

void SafetensorsWriter::finish() {
  if (current_ != sizes_.size())
    throw std::logic_error("SafetensorsWriter::finish: tensor " + std::to_string(current_) +
                           " of " + std::to_string(sizes_.size()) + " was not written in full");
  std::FILE* f = out_;
  out_ = nullptr;
  if (std::fflush(f) != 0 || std::ferror(f) != 0) {
    std::fclose(f);
    throw Error("writing '" + path_.string() + "' failed: " + std::strerror(errno));
  }
  if (std::fclose(f) != 0) throw Error("closing '" + path_.string() + "' failed: " + std::strerror(errno));
}

}  // namespace loom::io
