// The policy plugins one engine runs with, constructed from a config and wired together.
#pragma once

#include "core/config/config.h"
#include "core/plugin/plugin_registry.h"
#include "loom/sdk.h"

namespace loom {

struct EnginePlugins {
  // Declared so that destruction runs scheduler, allocator, then evictor (it outlives the allocator).
  PluginPtr<sdk::Evictor> evictor;
  PluginPtr<sdk::KvAllocator> allocator;
  PluginPtr<sdk::Scheduler> scheduler;
  PluginPtr<sdk::AttentionBackend> attention;
  PluginPtr<sdk::Parallel> parallel;
};

// Resolves, validates and constructs every plugin of `config` with `info`; the allocator gets
// the evictor. Throws ConfigError / PluginError naming the config line and the plugin.
EnginePlugins make_engine_plugins(const Config& config, PluginRegistry& registry, const sdk::EngineInfo& info);

}  // namespace loom
