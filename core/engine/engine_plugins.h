// The policy plugins one engine runs with, constructed from a config and wired together.
#pragma once

#include "core/config/config.h"
#include "core/plugin/plugin_registry.h"
#include "core/plugin/plugin_setup.h"
#include "loom/sdk.h"

namespace loom {

struct EnginePlugins {
  // Declared so that destruction runs scheduler, allocator, then evictor (it outlives the allocator).
  PluginPtr<sdk::Evictor> evictor;
  PluginPtr<sdk::KvAllocator> allocator;
  PluginPtr<sdk::Scheduler> scheduler;
  PluginPtr<sdk::AttentionBackend> attention;
  PluginPtr<sdk::Parallel> parallel;
  PluginPtr<sdk::KvConnector> connector;  // null without a [kv_connector] section
  PluginPtr<sdk::Drafter> drafter;        // null without a [speculative] section
  std::size_t num_draft_tokens = 0;       // [speculative] num_draft_tokens; 0 without a drafter
};

// The attention backend, made first: the engine asks it whether it runs on `device` with KV of
// `kv_dtype` before the model is converted or uploaded (info.num_blocks is still 0: a backend
// reads the pool's size from the KvCacheView it is handed). Throws ConfigError naming the config
// line when it says no.
PluginPtr<sdk::AttentionBackend> make_attention(const Config& config, const ResolvedPlugins& resolved,
                                                const sdk::EngineInfo& info, const sdk::Device& device,
                                                sdk::DType kv_dtype);

// Constructs the other plugins of `config` (resolved and validated by resolve_plugins) with
// `info`, the pool sized; the allocator gets the evictor. The parallel plugin must describe one
// rank holding the whole model, the only layout this engine runs until the model runner is split
// by rank. Throws ConfigError / PluginError naming the config line and the plugin.
EnginePlugins make_engine_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  PluginPtr<sdk::AttentionBackend> attention);

}  // namespace loom
