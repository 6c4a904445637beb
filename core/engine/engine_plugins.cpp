#include "core/engine/engine_plugins.h"

#include "core/engine/engine_services.h"
#include "core/plugin/plugin_setup.h"

namespace loom {

namespace {

// The pool's size in a dry run when the config does not fix it (the real one is known only once
// the model is on its device).
constexpr std::uint64_t kProvisionalBlocks = 1024;

template <typename Interface>
PluginPtr<Interface> make(const ResolvedPlugins& resolved, sdk::EngineInfo info,
                          sdk::EngineServices* services = nullptr) {
  const ResolvedPlugin* plugin = resolved.find(Interface::kKind);
  if (!plugin) return nullptr;
  info.services = services;
  return plugin->library->template create<Interface>(info, plugin->config);
}

std::string whole(std::uint32_t first, std::uint32_t end, std::uint32_t of) {
  // (append, not "[" + ...: gcc 12's -Wrestrict misfires on the latter)
  return std::string("[")
      .append(std::to_string(first))
      .append(", ")
      .append(std::to_string(end))
      .append(") of ")
      .append(std::to_string(of));
}

// Each rank's decoder layers, from the plugin's layout: whole layers in contiguous stages, in rank
// order, covering the model (pipeline parallelism). A layout that splits heads, FFN columns,
// experts or the vocabulary (tensor or expert parallelism) is refused, as is more than one rank
// on a GPU: neither runs in this version.
std::vector<LayerRange> pipeline_stages(const sdk::Parallel& parallel, const Config& config,
                                        const sdk::EngineInfo& info, const sdk::Device& device) {
  const auto* choice = config.plugin(sdk::PluginKind::parallel);
  const std::string where = choice->origin + ": [parallel] plugin \"" + choice->plugin + "\"";
  const std::uint32_t ranks = parallel.world_size();
  if (ranks == 0) throw ConfigError(where + " has no ranks");
  if (ranks > 1 && device.kind != sdk::DeviceKind::cpu)
    throw ConfigError(where + " splits the model over " + std::to_string(ranks) +
                      " ranks, but this version runs several ranks only on the CPU (pipeline stages in one "
                      "process); set [engine] device = \"cpu\", or plugin = \"single\" for one GPU");
  const sdk::ModelShape& m = info.model;
  std::vector<LayerRange> stages;
  for (std::uint32_t rank = 0; rank < ranks; ++rank) {
    const sdk::RankLayout l = parallel.layout(m, rank);
    const std::string who = where + " gives rank " + std::to_string(rank);
    if (l.first_head != 0 || l.end_head != m.num_heads || l.first_kv_head != 0 || l.end_kv_head != m.num_kv_heads ||
        l.ffn_begin != 0 || l.ffn_end != ~0u || l.first_expert != 0 || l.end_expert != m.num_experts ||
        l.vocab_begin != 0 || l.vocab_end != m.vocab_size)
      throw ConfigError(who + " a slice of the layer (heads " + whole(l.first_head, l.end_head, m.num_heads) +
                        ", KV heads " + whole(l.first_kv_head, l.end_kv_head, m.num_kv_heads) + ", experts " +
                        whole(l.first_expert, l.end_expert, m.num_experts) + ", vocabulary " +
                        whole(l.vocab_begin, l.vocab_end, m.vocab_size) +
                        "), but tensor and expert parallelism are not implemented yet: only pipeline stages of "
                        "whole layers run");
    const std::uint32_t expected_first = stages.empty() ? 0 : static_cast<std::uint32_t>(stages.back().end);
    if (l.first_layer != expected_first || l.end_layer <= l.first_layer || l.end_layer > m.num_layers)
      throw ConfigError(who + " layers " + whole(l.first_layer, l.end_layer, m.num_layers) +
                        "; pipeline stages must be non-empty and follow each other from layer " +
                        std::to_string(expected_first));
    stages.push_back({l.first_layer, l.end_layer});
  }
  if (stages.back().end != m.num_layers)
    throw ConfigError(where + "'s stages end at layer " + std::to_string(stages.back().end) + " of " +
                      std::to_string(m.num_layers) + ": every layer must belong to a rank");
  return stages;
}

}  // namespace

sdk::EngineInfo engine_info(const Config& config, const sdk::Device& device, const sdk::ModelShape& shape) {
  sdk::EngineInfo info;
  info.device = device.kind == sdk::DeviceKind::cpu ? "cpu" : "cuda:" + std::to_string(device.index);
  info.block_size = static_cast<std::uint32_t>(config.kv().integer("block_size"));
  info.max_num_seqs = static_cast<std::uint32_t>(config.engine.integer("max_num_seqs"));
  info.max_num_batched_tokens = static_cast<std::uint32_t>(config.engine.integer("max_num_batched_tokens"));
  info.seed = static_cast<std::uint64_t>(config.engine.integer("seed"));
  info.prefix_caching = config.kv().boolean("prefix_caching");
  info.model = shape;
  return info;
}

void try_policy_plugins(const Config& config, const ResolvedPlugins& resolved, PluginRegistry& registry,
                        const sdk::ModelShape& model, bool model_known) {
  // The device is not opened here: plugins are told the one the config names.
  const std::string& device = config.engine.string("device");
  sdk::EngineInfo info = engine_info(config, sdk::Device{sdk::DeviceKind::cpu, 0}, model);
  info.device = device;
  // At most the provisional count: a num_blocks beyond the memory is refused by name when the
  // pool is sized, not as a plugin's failed allocation here.
  const std::int64_t blocks = config.kv().integer("num_blocks");
  info.num_blocks = blocks > 0 ? std::min(static_cast<std::uint64_t>(blocks), kProvisionalBlocks) : kProvisionalBlocks;
  PluginPtr<sdk::Evictor> evictor = make<sdk::Evictor>(resolved, info);
  PluginPtr<sdk::KvAllocator> allocator = make<sdk::KvAllocator>(resolved, info);
  allocator->set_evictor(*evictor);
  make<sdk::Scheduler>(resolved, info).reset();
  ServicesPlan plan;
  plan.base_dir = config.base_dir;
  plan.target = info;
  plan.max_model_len = model.max_position;
  plan.device.kind = device == "cpu" ? sdk::DeviceKind::cpu : sdk::DeviceKind::cuda;
  plan.registry = &registry;
  plan.check_only = true;
  plan.target_known = model_known;
  EngineServiceProvider services(std::move(plan));
  make<sdk::KvConnector>(resolved, info, &services).reset();
  make_drafter(resolved, info, services).reset();
  allocator.reset();  // before the evictor it uses
}

RunnerPlugins make_runner_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  const sdk::Device& device, sdk::DType kv_dtype) {
  RunnerPlugins runner;
  runner.attention = make<sdk::AttentionBackend>(resolved, info);
  if (!runner.attention->supports(device, kv_dtype)) {
    const auto* choice = config.plugin(sdk::PluginKind::attention);
    throw ConfigError(choice->origin + ": [attention] plugin \"" + choice->plugin + "\" cannot run on " + info.device +
                      " with " + sdk::dtype_name(kv_dtype) +
                      " KV; choose a backend for this device (loom plugins lists them) or change [engine] device");
  }
  runner.parallel = make<sdk::Parallel>(resolved, info);
  runner.stages = pipeline_stages(*runner.parallel, config, info, device);
  return runner;
}

PluginPtr<sdk::Drafter> make_drafter(const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                     sdk::EngineServices& services) {
  return make<sdk::Drafter>(resolved, info, &services);
}

EnginePlugins make_engine_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  RunnerPlugins runner, PluginPtr<sdk::Drafter> drafter,
                                  sdk::EngineServices& services) {
  EnginePlugins plugins;
  plugins.evictor = make<sdk::Evictor>(resolved, info);
  plugins.allocator = make<sdk::KvAllocator>(resolved, info);
  plugins.allocator->set_evictor(*plugins.evictor);
  plugins.scheduler = make<sdk::Scheduler>(resolved, info);
  plugins.attention = std::move(runner.attention);
  plugins.parallel = std::move(runner.parallel);
  plugins.connector = make<sdk::KvConnector>(resolved, info, &services);
  plugins.drafter = std::move(drafter);
  if (plugins.drafter) {
    const sdk::PluginConfig& keys = config.plugin(sdk::PluginKind::drafter)->engine_keys;
    plugins.num_draft_tokens = static_cast<std::size_t>(keys.integer("num_draft_tokens"));
    plugins.adaptive_drafts = keys.boolean("adaptive");
  }
  return plugins;
}

}  // namespace loom
