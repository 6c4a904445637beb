// What the engine lends plugins (sdk::EngineServices, loom/engine_services.h): load_model() makes a
// LentModelRunner — a second model on the target's device and in its data type, with a KV cache
// of its own — and refuses, saying why, a model that is missing, malformed, of another
// vocabulary or beyond the memory there is. In the dry run of a config (check_only) it reads only
// the model's config. make_evictor() loads an evictor plugin through the engine's registry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/model/cuda_model_factory.h"
#include "core/plugin/plugin_setup.h"
#include "loom/engine_services.h"

namespace loom {

struct ServicesPlan {
  std::filesystem::path base_dir;  // relative model paths resolve against it (the config's folder)
  sdk::EngineInfo target;          // block size, batch limits and the target's shape
  std::size_t max_model_len = 0;   // the target's
  sdk::Device device;
  CudaModelOptions cuda;  // device.kind == cuda: the target's options
  double gpu_memory_utilization = 0.9;
  const ResolvedPlugin* attention = nullptr;  // the attention plugin a lent runner makes its own instance of
  PluginRegistry* registry = nullptr;         // where evictors are found
  bool check_only = false;                    // the dry run: configs are read, nothing loads
  bool target_known = true;                   // false: `target.model` is a stand-in (its vocabulary unchecked)
};

class EngineServiceProvider final : public sdk::EngineServices {
 public:
  explicit EngineServiceProvider(ServicesPlan plan) : plan_(std::move(plan)) {}

  std::unique_ptr<sdk::ModelRunner> load_model(const std::string& path, std::uint64_t kv_tokens) override;
  std::shared_ptr<sdk::Evictor> make_evictor(const std::string& plugin, std::uint64_t num_blocks) override;

 private:
  ServicesPlan plan_;
};

}  // namespace loom
