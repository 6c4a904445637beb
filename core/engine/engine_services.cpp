#include "core/engine/engine_services.h"

#include <algorithm>

#include "core/config/byte_size.h"
#include "core/config/key_validation.h"
#include "core/engine/lent_model_runner.h"
#include "core/io/model_loader.h"
#include "core/model/config_adapters.h"
#include "core/model/cpu_model.h"
#include "loom/error.h"
#include "loom/host_memory.h"

namespace loom {

namespace {

namespace fs = std::filesystem;

// The dry run's runner: the model's shape, nothing to run.
class ConfigOnlyRunner final : public sdk::ModelRunner {
 public:
  explicit ConfigOnlyRunner(const sdk::ModelShape& shape) : shape_(shape) {}
  const sdk::ModelShape& shape() const override { return shape_; }
  std::size_t num_tokens(sdk::SeqId) const override { return 0; }
  void truncate(sdk::SeqId, std::size_t) override {}
  void release(sdk::SeqId) override {}
  void extend(std::span<const sdk::ModelInput>, std::span<sdk::TokenId>, std::span<float>) override {
    throw Error("the model runner of a config's dry run does not run");
  }

 private:
  sdk::ModelShape shape_;
};

// The GPU memory a KV cache beside `model` can take under gpu_memory_utilization, after
// everything loaded so far.
std::uint64_t memory_for_cache(const Model& model, double gpu_memory_utilization) {
  try {
    return model.kv_cache_budget(gpu_memory_utilization);
  } catch (const DeviceError&) {
    return 1;  // nothing left: any cache is too large
  }
}

}  // namespace

std::unique_ptr<sdk::ModelRunner> EngineServiceProvider::load_model(const std::string& path, std::uint64_t kv_tokens) {
  if (path.empty()) throw Error("no model given: name a Hugging Face folder or a llama2.c .bin file");
  fs::path where = path;
  if (where.is_relative()) where = fs::weakly_canonical(plan_.base_dir / where);
  if (!fs::exists(where)) throw Error("'" + where.string() + "' does not exist");
  const io::ModelConfig config = io::load_model_config(where);
  const sdk::ModelShape& target = plan_.target.model;
  if (plan_.target_known && config.vocab_size != static_cast<std::int64_t>(target.vocab_size))
    throw Error(where.string() + " has a vocabulary of " + std::to_string(config.vocab_size) +
                " tokens and the target model one of " + std::to_string(target.vocab_size) +
                ": a draft model must share the target's tokenizer");
  const auto kv_bytes = target.kv_bytes_per_element;
  const std::size_t context =
      std::min<std::size_t>(plan_.max_model_len, static_cast<std::size_t>(config.context_length()));
  const std::uint32_t block_size = plan_.target.block_size;
  if (kv_tokens == 0) kv_tokens = static_cast<std::uint64_t>(plan_.target.max_num_seqs) * context;
  const std::uint64_t num_blocks = (kv_tokens + block_size - 1) / block_size;
  sdk::EngineInfo info = plan_.target;
  info.model = shape_of(config, kv_bytes);
  info.model.max_position = static_cast<std::uint32_t>(context);
  info.num_blocks = num_blocks;
  info.services = nullptr;
  const auto cache_bytes = static_cast<unsigned __int128>(num_blocks) * info.block_bytes();
  auto check_room = [&](std::uint64_t room, const char* after) {
    if ((room == 0 || cache_bytes <= room) && num_blocks <= 0x7fffffffull) return;
    const std::uint64_t shown = cache_bytes > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(cache_bytes);
    throw Error("its KV cache of " + std::to_string(kv_tokens) + " tokens needs " + format_byte_size(shown) + " and " +
                format_byte_size(room) + " is available" + after + ": set kv_tokens lower");
  };
  if (plan_.device.kind == sdk::DeviceKind::cpu) check_room(sdk::available_host_memory(), "");
  if (plan_.check_only) return std::make_unique<ConfigOnlyRunner>(info.model);

  std::unique_ptr<Model> model;
  if (plan_.device.kind == sdk::DeviceKind::cpu) {
    model = std::make_unique<CpuModel>(io::load_model(where));
  } else {
    CudaModelOptions options = plan_.cuda;
    options.max_model_len = static_cast<std::uint32_t>(context);
    options.max_draft_tokens = 0;
    model = make_cuda_model(io::load_model(where), options);
    check_room(memory_for_cache(*model, plan_.gpu_memory_utilization), " after its weights");
  }
  PluginPtr<sdk::AttentionBackend> attention =
      plan_.attention->library->create<sdk::AttentionBackend>(info, plan_.attention->config);
  LentRunnerLimits limits;
  limits.num_blocks = static_cast<std::uint32_t>(num_blocks);
  limits.block_size = block_size;
  limits.max_step_tokens = plan_.target.max_num_batched_tokens;
  limits.max_step_seqs = plan_.target.max_num_seqs;
  limits.context = static_cast<std::uint32_t>(context);
  return std::make_unique<LentModelRunner>(std::move(model), std::move(attention), limits);
}

std::shared_ptr<sdk::Evictor> EngineServiceProvider::make_evictor(const std::string& plugin, std::uint64_t num_blocks) {
  if (!plan_.registry) throw Error("this engine lends no evictor");
  const std::shared_ptr<const LoadedPlugin> library =
      plan_.registry->load(sdk::PluginKind::evictor, plugin, plan_.base_dir);
  RawSection defaults;
  defaults.name = "evictor";
  const sdk::PluginConfig config = validate_section(defaults, library->keys(), library->label());
  sdk::EngineInfo info = plan_.target;
  info.num_blocks = num_blocks;
  info.services = nullptr;
  PluginPtr<sdk::Evictor> evictor = library->create<sdk::Evictor>(info, config);
  const PluginDeleter deleter = evictor.get_deleter();  // keeps the library loaded while the object lives
  return std::shared_ptr<sdk::Evictor>(evictor.release(), deleter);
}

}  // namespace loom
