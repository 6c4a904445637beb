#include "core/engine/engine_plugins.h"

#include <algorithm>

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

// A layout covers [0, of) when every rank holds all of it, or when the ranks hold contiguous
// pieces of it in rank order.
bool covers(const std::vector<sdk::RankLayout>& layouts, std::uint32_t sdk::RankLayout::*first,
            std::uint32_t sdk::RankLayout::*end, std::uint32_t of) {
  const bool replicated = std::all_of(layouts.begin(), layouts.end(),
                                      [&](const sdk::RankLayout& l) { return l.*first == 0 && l.*end == of; });
  std::uint32_t at = 0;
  for (const sdk::RankLayout& l : layouts) {
    if (l.*first != at || l.*end <= l.*first) return replicated;
    at = l.*end;
  }
  return replicated || at == of;
}

// Each rank's share, from the plugin's layout, checked: either pipeline stages (whole layers,
// contiguous, in rank order, covering the model) or shares of every layer (tensor or expert
// parallelism: heads, FFN parts, experts and vocabulary split evenly or replicated). Several
// ranks run on the CPU only in this version.
RankPlan rank_plan(const sdk::Parallel& parallel, const Config& config, const sdk::EngineInfo& info,
                   const sdk::Device& device) {
  const auto* choice = config.plugin(sdk::PluginKind::parallel);
  const std::string where = choice->origin + ": [parallel] plugin \"" + choice->plugin + "\"";
  const std::uint32_t ranks = parallel.world_size();
  if (ranks == 0) throw ConfigError(where + " has no ranks");
  if (ranks > 1 && device.kind != sdk::DeviceKind::cpu)
    throw ConfigError(where + " splits the model over " + std::to_string(ranks) +
                      " ranks, but this version runs several ranks only on the CPU (ranks as threads); set "
                      "[engine] device = \"cpu\", or plugin = \"single\" (or size = 1) for one GPU");
  const sdk::ModelShape& m = info.model;
  RankPlan plan;
  for (std::uint32_t rank = 0; rank < ranks; ++rank) {
    try {
      plan.layouts.push_back(parallel.layout(m, rank));
    } catch (const Error& e) {
      throw ConfigError(where + " cannot split this model: " + e.what());
    }
    plan.layouts.back().rank = rank;  // the runner's collectives name it; a plugin may leave it 0
  }
  const auto whole_layer = [&](const sdk::RankLayout& l) {
    return l.first_head == 0 && l.end_head == m.num_heads && l.first_kv_head == 0 && l.end_kv_head == m.num_kv_heads &&
           l.ffn_parts == 1 && l.first_expert == 0 && l.end_expert == m.num_experts && l.vocab_begin == 0 &&
           l.vocab_end == m.vocab_size;
  };
  if (std::all_of(plan.layouts.begin(), plan.layouts.end(), whole_layer)) {
    for (const sdk::RankLayout& l : plan.layouts) {
      const std::string who = where + " gives rank " + std::to_string(l.rank);
      const std::uint32_t expected_first = plan.stages.empty() ? 0 : static_cast<std::uint32_t>(plan.stages.back().end);
      if (l.first_layer != expected_first || l.end_layer <= l.first_layer || l.end_layer > m.num_layers)
        throw ConfigError(who + " layers " + whole(l.first_layer, l.end_layer, m.num_layers) +
                          "; pipeline stages must be non-empty and follow each other from layer " +
                          std::to_string(expected_first));
      plan.stages.push_back({l.first_layer, l.end_layer});
    }
    if (plan.stages.back().end != m.num_layers)
      throw ConfigError(where + "'s stages end at layer " + std::to_string(plan.stages.back().end) + " of " +
                        std::to_string(m.num_layers) + ": every layer must belong to a rank");
    return plan;
  }
  for (const sdk::RankLayout& l : plan.layouts)
    if (l.first_layer != 0 || l.end_layer != m.num_layers)
      throw ConfigError(where + " gives rank " + std::to_string(l.rank) + " layers " +
                        whole(l.first_layer, l.end_layer, m.num_layers) +
                        " and a slice of each layer; pipeline stages combined with split layers (tp x pp) do not "
                        "run in this version: split the layers or the heads, not both");
  const std::uint32_t group = m.num_heads / std::max(m.num_kv_heads, 1u);  // query heads per KV head
  for (const sdk::RankLayout& l : plan.layouts) {
    const std::uint32_t first_kv = l.first_head / group, end_kv = (l.end_head + group - 1) / group;
    if (l.end_head <= l.first_head || l.first_kv_head != first_kv || l.end_kv_head != end_kv)
      throw ConfigError(where + " gives rank " + std::to_string(l.rank) + " heads " +
                        whole(l.first_head, l.end_head, m.num_heads) + " and KV heads " +
                        whole(l.first_kv_head, l.end_kv_head, m.num_kv_heads) +
                        ", but those query heads read KV heads " + whole(first_kv, end_kv, m.num_kv_heads) +
                        ": a rank holds exactly the KV heads its query heads read");
  }
  using L = sdk::RankLayout;
  const bool ffn_even = std::all_of(plan.layouts.begin(), plan.layouts.end(), [&](const L& l) {
    return l.ffn_parts == 1 || (l.ffn_parts == ranks && l.ffn_part == l.rank);
  });
  if (!covers(plan.layouts, &L::first_head, &L::end_head, m.num_heads) || !ffn_even ||
      !covers(plan.layouts, &L::first_expert, &L::end_expert, m.num_experts) ||
      !covers(plan.layouts, &L::vocab_begin, &L::vocab_end, m.vocab_size))
    throw ConfigError(where +
                      " splits the layers unevenly: heads, FFN parts, experts and vocabulary must each be "
                      "replicated on every rank or split over the ranks in rank order");
  plan.sharded = true;
  return plan;
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
  runner.ranks = rank_plan(*runner.parallel, config, info, device);
  if (runner.ranks.sharded) {
    if (const auto* connector = config.plugin(sdk::PluginKind::kv_connector))
      throw ConfigError(connector->origin + ": [kv_connector] plugin \"" + connector->plugin +
                        "\" copies KV blocks through one cache, but [parallel] plugin \"" +
                        config.plugin(sdk::PluginKind::parallel)->plugin +
                        "\" splits the KV heads over ranks; drop one of the two sections");
  }
  if (runner.ranks.layouts.size() > 1)
    for (std::size_t r = 0; r < runner.ranks.layouts.size(); ++r)  // each rank prepares its own steps
      runner.rank_attention.push_back(make<sdk::AttentionBackend>(resolved, info));
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
