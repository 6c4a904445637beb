// All tensors of a Hugging Face model directory, looked up by name: either one
// `model.safetensors`, or the shards listed in `model.safetensors.index.json`
// ({"weight_map": {tensor name: shard file name}}). Each file is mapped once and validated on
// open (see safetensors.h); the views stay valid while the store, or a copied view, lives.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"

namespace loom::io {

// The "weight_map" of a model.safetensors.index.json: (tensor name, shard file name) pairs in
// tensor-name order. Throws loom::ModelError naming `index_path` when `text` is not JSON, has no
// "weight_map" object, or an entry is not a string naming a file in the model directory.
std::vector<std::pair<std::string, std::string>> parse_safetensors_index(std::string_view text,
                                                                         const std::filesystem::path& index_path);

class TensorStore {
 public:
  // Opens the safetensors file(s) of `dir`; prefers the index when both forms exist. Throws
  // loom::ModelError when neither exists, the index is malformed, a shard is missing or
  // defective, or a tensor the index names is not in its shard.
  static TensorStore open_directory(const std::filesystem::path& dir);
  // Opens a single safetensors file.
  static TensorStore open_file(const std::filesystem::path& file);

  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }
  // The tensor called `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  // The tensor called `name`; throws loom::ModelError naming it and the directory if absent.
  const TensorView& get(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  // The files opened, in order.
  const std::vector<std::filesystem::path>& files() const { return paths_; }
  // The directory (or file) the store was opened from, for messages.
  const std::filesystem::path& source() const { return source_; }

 private:
  std::filesystem::path source_;
  std::vector<std::filesystem::path> paths_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*, std::less<>> index_;
};

}  // namespace loom::io
