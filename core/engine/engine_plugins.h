// The policy plugins one engine runs with, constructed from a config and wired together.
#pragma once

#include <vector>

#include "core/config/config.h"
#include "core/plugin/plugin_registry.h"
#include "core/plugin/plugin_setup.h"
#include "core/model/layer_range.h"
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
  bool adaptive_drafts = true;            // [speculative] adaptive
};

// What every plugin is told, but the pool's size (num_blocks stays 0).
sdk::EngineInfo engine_info(const Config& config, const sdk::Device& device, const sdk::ModelShape& shape);

// A dry run before any weight is read: constructs the policy plugins (evictor, allocator,
// scheduler, KV connector, drafter) for a model of config `model` with a provisional pool, then
// drops them, so that a key a plugin refuses in its constructor is refused before the model
// loads (and by `loom config --explain`). Throws as make_engine_plugins.
// `model_known` false: `model` is a stand-in shape (the config's model could not be read), so
// nothing is checked against it (a draft model's vocabulary).
void try_policy_plugins(const Config& config, const ResolvedPlugins& resolved, PluginRegistry& registry,
                        const sdk::ModelShape& model, bool model_known = true);

// The plugins the model runner is built around, made before it (EngineInfo::num_blocks is still
// 0: the pool is sized once the model is on its device): the attention backend, asked whether it
// runs on `device` with KV of `kv_dtype` before the model is converted or uploaded, and the
// parallel plugin, whose layout gives each rank's decoder layers (pipeline stages; one stage
// holding every layer for `single`).
struct RankPlan {
  std::vector<sdk::RankLayout> layouts;  // per rank
  std::vector<LayerRange> stages;        // per rank, when the ranks hold whole layers (pipeline)
  bool sharded = false;                  // the ranks hold slices of every layer (tensor, expert)
};

struct RunnerPlugins {
  PluginPtr<sdk::AttentionBackend> attention;
  PluginPtr<sdk::Parallel> parallel;
  RankPlan ranks;
  std::vector<PluginPtr<sdk::AttentionBackend>> rank_attention;  // several ranks: one backend each
};

// Throws ConfigError naming the config line when the backend says no, when the layout cannot run
// (uneven slices, pipeline stages of split layers, a shape the plugin cannot split), when several
// ranks are asked of a GPU, or when ranks that split the KV heads meet a KV connector.
RunnerPlugins make_runner_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  const sdk::Device& device, sdk::DType kv_dtype);

// The drafter of `config` (null without a [speculative] section), told `services`: made once the
// target is on its device and before the pool is sized, so a draft model it loads takes its
// memory from the pool's.
PluginPtr<sdk::Drafter> make_drafter(const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                     sdk::EngineServices& services);

// Constructs the other plugins of `config` (resolved and validated by resolve_plugins) with
// `info`, the pool sized, and takes over the runner's and the drafter; the allocator gets the
// evictor, the KV connector `services`. Throws ConfigError / PluginError naming the config line
// and the plugin.
EnginePlugins make_engine_plugins(const Config& config, const ResolvedPlugins& resolved, const sdk::EngineInfo& info,
                                  RunnerPlugins runner, PluginPtr<sdk::Drafter> drafter,
                                  sdk::EngineServices& services);

}  // namespace loom
