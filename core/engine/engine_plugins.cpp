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

}  // namespace

EnginePlugins make_engine_plugins(const Config& config, PluginRegistry& registry, const sdk::EngineInfo& info) {
  ResolvedPlugins resolved = resolve_plugins(config, registry);  // everything checked before anything is made
  if (resolved.find(sdk::PluginKind::kv_connector) || resolved.find(sdk::PluginKind::drafter)) {
    const auto* choice = resolved.find(sdk::PluginKind::kv_connector) ? config.plugin(sdk::PluginKind::kv_connector)
                                                                       : config.plugin(sdk::PluginKind::drafter);
    throw ConfigError(choice->origin + ": [" + choice->section +
                      "] this engine does not run KV connectors or drafters yet; remove the section");
  }
  EnginePlugins plugins;
  plugins.evictor = make<sdk::Evictor>(resolved, info);
  plugins.allocator = make<sdk::KvAllocator>(resolved, info);
  plugins.allocator->set_evictor(*plugins.evictor);
  plugins.scheduler = make<sdk::Scheduler>(resolved, info);
  plugins.attention = make<sdk::AttentionBackend>(resolved, info);
  plugins.parallel = make<sdk::Parallel>(resolved, info);
  return plugins;
}

}  // namespace loom
