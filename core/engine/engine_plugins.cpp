#include "core/engine/engine_plugins.h"

#include "core/plugin/plugin_setup.h"

namespace loom {

namespace {

template <typename Interface>
PluginPtr<Interface> make(const ResolvedPlugins& resolved, const sdk::EngineInfo& info) {
  const ResolvedPlugin* plugin = resolved.find(Interface::kKind);
  if (!plugin) return nullptr;
  return plugin->library->template create<Interface>(info, plugin->config);
}

// One rank holding the whole model is all this engine runs; a plugin laying out more is refused
// before anything runs, naming what it asked for.
void check_single_rank(const sdk::Parallel& parallel, const Config& config, const sdk::EngineInfo& info) {
  const auto* choice = config.plugin(sdk::PluginKind::parallel);
  const std::string where = choice->origin + ": [parallel] plugin \"" + choice->plugin + "\"";
  if (const std::uint32_t ranks = parallel.world_size(); ranks != 1)
    throw ConfigError(where + " splits the model over " + std::to_string(ranks) +
                      " ranks, but this engine runs one rank holding the whole model (tensor, pipeline and "
                      "expert parallelism are not implemented yet); use plugin = \"single\"");
  const sdk::ModelShape& m = info.model;
  const sdk::RankLayout l = parallel.layout(m, 0);
  const bool whole = l.first_layer == 0 && l.end_layer == m.num_layers && l.first_head == 0 &&
                     l.end_head == m.num_heads && l.first_kv_head == 0 && l.end_kv_head == m.num_kv_heads &&
                     l.first_expert == 0 && l.end_expert == m.num_experts && l.vocab_begin == 0 &&
                     l.vocab_end == m.vocab_size;
  if (!whole)
    throw ConfigError(where + " gives rank 0 only part of the model (layers [" + std::to_string(l.first_layer) + ", " +
                      std::to_string(l.end_layer) + ") of " + std::to_string(m.num_layers) + ", heads [" +
                      std::to_string(l.first_head) + ", " + std::to_string(l.end_head) + ") of " +
                      std::to_string(m.num_heads) + ", ...), but this engine runs one rank holding the whole model");
}

}  // namespace

PluginPtr<sdk::AttentionBackend> make_attention(const Config& config, const ResolvedPlugins& resolved,
                                                const sdk::EngineInfo& info, const sdk::Device& device,
                                                sdk::DType kv_dtype) {
  auto attention = make<sdk::AttentionBackend>(resolved, info);
  if (!attention->supports(device, kv_dtype)) {
    const auto* choice = config.plugin(sdk::PluginKind::attention);
    throw ConfigError(choice->origin + ": [attention] plugin \"" + choice->plugin + "\" cannot run on " +
                      info.device + " with " + sdk::dtype_name(kv_dtype) +
                      " KV; choose a backend for this device (loom plugins lists them) or change [engine] device");
  }
  return attention;
}

EnginePlugins make_engine_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  PluginPtr<sdk::AttentionBackend> attention) {
  EnginePlugins plugins;
  plugins.evictor = make<sdk::Evictor>(resolved, info);
  plugins.allocator = make<sdk::KvAllocator>(resolved, info);
  plugins.allocator->set_evictor(*plugins.evictor);
  plugins.scheduler = make<sdk::Scheduler>(resolved, info);
  plugins.attention = std::move(attention);
  plugins.parallel = make<sdk::Parallel>(resolved, info);
  check_single_rank(*plugins.parallel, config, info);
  plugins.connector = make<sdk::KvConnector>(resolved, info);
  plugins.drafter = make<sdk::Drafter>(resolved, info);
  if (plugins.drafter)
    plugins.num_draft_tokens =
        static_cast<std::size_t>(config.plugin(sdk::PluginKind::drafter)->engine_keys.integer("num_draft_tokens"));
  return plugins;
}

}  // namespace loom
