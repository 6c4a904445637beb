#include "core/io/tensor_store.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/common/json_depth.h"
#include "loom/error.h"

namespace loom::io {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

[[noreturn]] void fail_index(const std::filesystem::path& index, const std::string& what) {
  throw ModelError("safetensors index '" + index.string() + "': " + what);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_safetensors_index(std::string_view text,
                                                                         const std::filesystem::path& index_path) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > kMaxJsonDepth)
        fail_index(index_path, "nests lists and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    fail_index(index_path, std::string("is not valid JSON (") + e.what() + ")");
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    fail_index(index_path, "has no \"weight_map\" object");

  std::vector<std::pair<std::string, std::string>> weight_map;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) fail_index(index_path, "weight_map entry for '" + name + "' is not a string");
    const std::string shard_name = shard.get<std::string>();
    const std::filesystem::path rel(shard_name);
    if (rel.empty() || rel.is_absolute() || rel.has_parent_path())
      fail_index(index_path, "weight_map entry for '" + name + "' names '" + shard_name +
                                 "', which is not a file name in the model directory");
    weight_map.emplace_back(name, shard_name);
  }
  return weight_map;
}

TensorStore TensorStore::open_file(const std::filesystem::path& file) {
  TensorStore store;
  store.source_ = file;
  auto st = std::make_shared<SafetensorsFile>(SafetensorsFile::open(file));
  for (const TensorView& t : st->tensors()) store.index_[t.name] = &t;
  store.paths_.push_back(file);
  store.files_.push_back(std::move(st));
  return store;
}

TensorStore TensorStore::open_directory(const std::filesystem::path& dir) {
  const auto index_path = dir / kIndexFile;
  if (!std::filesystem::exists(index_path)) {
    if (!std::filesystem::exists(dir / kSingleFile))
      throw ModelError("model directory '" + dir.string() + "' has neither " + kSingleFile +
                       " nor " + kIndexFile + " (Loom reads safetensors checkpoints only; convert "
                       "*.bin/*.pt weights with safetensors' convert script)");
    TensorStore store = open_file(dir / kSingleFile);
    store.source_ = dir;
    return store;
  }

  std::ifstream in(index_path, std::ios::binary);
  if (!in) fail_index(index_path, "cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  const auto weight_map = parse_safetensors_index(text.str(), index_path);

  TensorStore store;
  store.source_ = dir;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  for (const auto& [name, shard_name] : weight_map) {
    auto it = shards.find(shard_name);
    if (it == shards.end()) {
      const auto shard_path = dir / shard_name;
      if (!std::filesystem::exists(shard_path))
        fail_index(index_path, "shard '" + shard_name + "' (for tensor '" + name +
                                   "') is missing from the directory (incomplete download?)");
      auto file = std::make_shared<SafetensorsFile>(SafetensorsFile::open(shard_path));
      it = shards.emplace(shard_name, file).first;
      store.paths_.push_back(shard_path);
      store.files_.push_back(std::move(file));
    }
    const TensorView* view = it->second->find(name);
    if (view == nullptr)
      fail_index(index_path, "tensor '" + name + "' is mapped to '" + shard_name +
                                 "' but that file does not contain it");
    store.index_[name] = view;
  }
  return store;
}

const TensorView* TensorStore::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& TensorStore::get(std::string_view name) const {
  const TensorView* view = find(name);
  if (view == nullptr)
    throw ModelError("tensor '" + std::string(name) + "' is missing from '" + source_.string() + "'");
  return *view;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, view] : index_) out.push_back(name);
  return out;
}

}  // namespace loom::io
