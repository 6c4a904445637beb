// Turns a Config's plugin choices into loaded, checked plugins with validated keys.
//
// After resolve_plugins() returns, every chosen plugin is loaded, of the right kind and ABI,
// and its section's keys are validated against its manifest with defaults filled in; the
// engine may then construct the plugin objects. Nothing runs before this succeeds.
#pragma once

#include <memory>
#include <vector>

#include "core/config/config.h"
#include "core/plugin/plugin_registry.h"

namespace loom {

struct ResolvedPlugin {
  const PluginChoice* choice;  // points into the Config, which must outlive this
  std::shared_ptr<const LoadedPlugin> library;
  sdk::PluginConfig config;    // the plugin's validated keys
};

struct ResolvedPlugins {
  std::vector<ResolvedPlugin> plugins;  // in the order of Config::plugins
  const ResolvedPlugin* find(sdk::PluginKind kind) const;
};

// Loads every plugin the config chooses and validates its keys. Errors name the config line
// that chose the plugin. Throws PluginError or ConfigError.
ResolvedPlugins resolve_plugins(const Config& config, PluginRegistry& registry);

}  // namespace loom
