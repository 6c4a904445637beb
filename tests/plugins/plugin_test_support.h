// Loads real plugin libraries the way the engine does (registry, key validation, factory), and
// wires an allocator to an evictor, so policy tests exercise the shipped .so files.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/key_validation.h"
#include "core/config/raw_config.h"
#include "core/plugin/plugin_registry.h"
#include "loom/evictor.h"
#include "loom/kv_allocator.h"
#include "loom/scheduler.h"

namespace loom::testing {

// One registry for the test binary: like the engine, it loads each library once.
inline PluginRegistry& registry() {
  static PluginRegistry instance(PluginRegistry::default_search_path());
  return instance;
}

// Creates a plugin of `Interface` named `name` with its default config plus `overrides`.
template <typename Interface>
PluginPtr<Interface> make_plugin(std::string_view name, const sdk::EngineInfo& info,
                                 RawSection section = {}) {
  auto lib = registry().load(Interface::kKind, name);
  section.name = sdk::plugin_kind_name(Interface::kKind);
  sdk::PluginConfig config = validate_section(section, lib->keys(), lib->label());
  return lib->template create<Interface>(info, config);
}

// An allocator with its evictor; the evictor is declared first so it outlives the allocator.
struct KvPool {
  PluginPtr<sdk::Evictor> evictor;
  PluginPtr<sdk::KvAllocator> allocator;
};

inline sdk::EngineInfo engine_info(std::uint64_t num_blocks, std::uint32_t block_size,
                                   bool prefix_caching = true) {
  sdk::EngineInfo info;
  info.num_blocks = num_blocks;
  info.block_size = block_size;
  info.prefix_caching = prefix_caching;
  return info;
}

inline KvPool make_pool(const sdk::EngineInfo& info, std::string_view allocator = "paged",
                        std::string_view evictor = "lru") {
  KvPool pool;
  pool.evictor = make_plugin<sdk::Evictor>(evictor, info);
  pool.allocator = make_plugin<sdk::KvAllocator>(allocator, info);
  pool.allocator->set_evictor(*pool.evictor);
  return pool;
}

// Tokens 0, 1, ..., n-1 shifted by `base`: distinct prompts for distinct bases.
inline std::vector<sdk::TokenId> iota_tokens(std::size_t n, sdk::TokenId base = 0) {
  std::vector<sdk::TokenId> tokens(n);
  for (std::size_t i = 0; i < n; ++i) tokens[i] = base + static_cast<sdk::TokenId>(i);
  return tokens;
}

}  // namespace loom::testing
