// The configuration of one run: the engine's own settings and the plugin chosen for each kind.
//
// load_config() reads a TOML file, applies --set overrides and validates every engine key
// (types, ranges, unknown keys). Plugin keys are validated later, against each plugin's
// manifest, once the registry has loaded it (see core/plugin/plugin_setup.h); nothing runs
// before both checks pass.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/config/raw_config.h"
#include "loom/plugin.h"

namespace loom {

// The section a plugin kind is configured in, and the kind's default plugin.
struct PluginSectionSpec {
  sdk::PluginKind kind;
  const char* section;          // "kv" for kv_allocator, "speculative" for drafter
  const char* default_plugin;   // "" = the kind is off unless configured
  std::span<const sdk::ConfigKeySpec> engine_keys;  // keys of the section the engine owns
};

std::span<const PluginSectionSpec> plugin_section_specs();

// Engine-owned sections ([model], [engine], [sampling]) and their keys.
struct EngineSectionSpec {
  const char* section;
  std::span<const sdk::ConfigKeySpec> keys;
};
std::span<const EngineSectionSpec> engine_section_specs();

struct PluginChoice {
  sdk::PluginKind kind;
  std::string section;  // "evictor"
  std::string plugin;   // name ("lru") or path ("./libfoo.so") as written
  std::string origin;   // where `plugin` was set: file:line, --set ..., or "default"
  RawSection keys;      // the plugin's own keys: `plugin` and engine-owned keys removed
  sdk::PluginConfig engine_keys;  // validated engine-owned keys of this section (e.g. kv.block_size)
};

struct Config {
  std::string source;              // the file as named, for messages
  std::filesystem::path base_dir;  // relative plugin and model paths resolve against it
  sdk::PluginConfig model;
  sdk::PluginConfig engine;
  sdk::PluginConfig sampling;
  std::vector<PluginChoice> plugins;  // one per enabled kind, in the order of plugin_section_specs()

  const PluginChoice* plugin(sdk::PluginKind kind) const;
  // The validated engine-owned keys of [kv].
  const sdk::PluginConfig& kv() const;
};

// Loads, overrides and validates. Throws ConfigError.
Config load_config(const std::filesystem::path& path, std::span<const std::string> overrides = {});
Config load_config_from(RawConfig raw, const std::filesystem::path& base_dir,
                        std::span<const std::string> overrides = {});

}  // namespace loom
