#include "core/plugin/plugin_setup.h"

#include "core/config/key_validation.h"

namespace loom {

const ResolvedPlugin* ResolvedPlugins::find(sdk::PluginKind kind) const {
  for (const auto& plugin : plugins)
    if (plugin.choice->kind == kind) return &plugin;
  return nullptr;
}

ResolvedPlugins resolve_plugins(const Config& config, PluginRegistry& registry) {
  ResolvedPlugins resolved;
  for (const PluginChoice& choice : config.plugins) {
    std::shared_ptr<const LoadedPlugin> library;
    try {
      library = registry.load(choice.kind, choice.plugin, config.base_dir);
    } catch (const PluginError& e) {
      const bool defaulted = choice.origin == "default";
      throw PluginError((defaulted ? "" : choice.origin + ": ") + "[" + choice.section + "] plugin = \"" +
                        choice.plugin + "\"" + (defaulted ? " (the default)" : "") + ": " + e.what());
    }
    sdk::PluginConfig values = validate_section(choice.keys, library->keys(), library->label());
    resolved.plugins.push_back({&choice, std::move(library), std::move(values)});
  }
  return resolved;
}

}  // namespace loom
