#include "core/io/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/common/json_depth.h"
#include "loom/error.h"

namespace loom::io {
namespace {

// The reference implementation refuses headers above 100 MB; a larger one is a corrupt length.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw ModelError("safetensors file '" + path.string() + "': " + what);
}

std::string tensor_prefix(const std::string& name) { return "tensor '" + name + "': "; }

std::vector<std::int64_t> parse_shape(const std::filesystem::path& path, const std::string& name,
                                      const nlohmann::json& j) {
  if (!j.is_array()) fail(path, tensor_prefix(name) + "\"shape\" is not an array");
  std::vector<std::int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_unsigned())
      fail(path, tensor_prefix(name) + "\"shape\" has an entry that is not a non-negative integer: " +
                     d.dump());
    const auto v = d.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(INT64_MAX)) fail(path, tensor_prefix(name) + "dimension too large");
    shape.push_back(static_cast<std::int64_t>(v));
  }
  return shape;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto mapping = std::make_shared<const MappedFile>(MappedFile::open(path));
  SafetensorsFile file = parse(mapping->bytes(), path);
  file.mapping_ = mapping;
  for (TensorView& t : file.tensors_) t.mapping = mapping;
  return file;
}

SafetensorsFile SafetensorsFile::parse(std::span<const std::byte> bytes, const std::filesystem::path& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.size_ = bytes.size();
  const std::size_t size = bytes.size();
  if (size < 8)
    fail(path, "file is " + std::to_string(size) +
                   " bytes, shorter than the 8-byte header length (truncated or not safetensors)");
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the file size " +
                   std::to_string(size) + " (file truncated or not safetensors)");
  const std::size_t data_start = 8 + header_len;
  const std::size_t data_size = size - data_start;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data() + 8),
                                   reinterpret_cast<const char*>(bytes.data() + data_start),
                                   [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                                     if (depth > kMaxJsonDepth)
                                       fail(path, "header nests lists and objects deeper than " +
                                                      std::to_string(kMaxJsonDepth) + " levels (corrupt file?)");
                                     return true;
                                   });
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "\"__metadata__\" is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(path, "\"__metadata__\" value for '" + k + "' is not a string");
        file.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail(path, tensor_prefix(name) + "entry is not an object");
    const auto dt = entry.find("dtype");
    const auto sh = entry.find("shape");
    const auto off = entry.find("data_offsets");
    if (dt == entry.end() || sh == entry.end() || off == entry.end())
      fail(path, tensor_prefix(name) + "needs \"dtype\", \"shape\" and \"data_offsets\"");
    if (!dt->is_string()) fail(path, tensor_prefix(name) + "\"dtype\" is not a string");
    const std::string dtype_str = dt->get<std::string>();
    const auto dtype = parse_safetensors_dtype(dtype_str);
    if (!dtype)
      fail(path, tensor_prefix(name) + "dtype " + dtype_str +
                     " is not supported; Loom reads F32, F16 and BF16 (convert the checkpoint, "
                     "e.g. save it with torch_dtype=bfloat16)");
    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.shape = parse_shape(path, name, *sh);
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail(path, tensor_prefix(name) + "\"data_offsets\" must be two non-negative integers, found " +
                     off->dump());
    const auto begin = (*off)[0].get<std::uint64_t>();
    const auto end = (*off)[1].get<std::uint64_t>();
    if (begin > end)
      fail(path, tensor_prefix(name) + "data_offsets [" + std::to_string(begin) + ", " +
                     std::to_string(end) + "] end before they begin");
    const auto numel = shape_numel(view.shape);
    std::uint64_t expect = 0;
    if (!numel || __builtin_mul_overflow(static_cast<std::uint64_t>(*numel), dtype_size(*dtype), &expect))
      fail(path, tensor_prefix(name) + "shape " + shape_to_string(view.shape) + " is too large");
    if (expect != end - begin)
      fail(path, tensor_prefix(name) + "shape " + shape_to_string(view.shape) + " of " + dtype_str +
                     " needs " + std::to_string(expect) + " bytes but data_offsets [" +
                     std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                     std::to_string(end - begin));
    if (end > data_size)
      fail(path, tensor_prefix(name) + "data_offsets [" + std::to_string(begin) + ", " +
                     std::to_string(end) + "] extend beyond the data section of " +
                     std::to_string(data_size) + " bytes (file truncated?)");
    view.data = bytes.data() + data_start + begin;
    view.byte_size = end - begin;
    view.file = path;
    file.tensors_.push_back(std::move(view));
  }

  std::sort(file.tensors_.begin(), file.tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.data < b.data; });
  const TensorView* prev = nullptr;
  for (const TensorView& t : file.tensors_) {
    if (t.byte_size == 0) continue;
    if (prev != nullptr && t.data < prev->data + prev->byte_size)
      fail(path, "tensors '" + prev->name + "' and '" + t.name +
                     "' have overlapping data_offsets (corrupt header)");
    prev = &t;
  }
  for (std::size_t i = 0; i < file.tensors_.size(); ++i) file.index_[file.tensors_[i].name] = i;
  return file;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace loom::io
