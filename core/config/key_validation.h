// Checks the keys of one config section against a list of key specs and fills in defaults.
//
// The same check serves the engine's own sections ([engine], [model], ...) and every plugin's
// section (against its manifest), so every config mistake is reported the same way.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/config/raw_config.h"
#include "loom/plugin.h"

namespace loom {

// Returns the validated values: every spec'd key, from the section or its default, with types
// normalized (an integer given for a number key becomes a double; bytes become an integer).
// Keys in `ignored` are skipped (they belong to someone else). `owner` names who accepts the
// keys in messages ("the engine", "evictor plugin 'lru'").
// Throws ConfigError naming the origin (file:line or --set), the section, the key, what was
// expected and the accepted keys.
sdk::PluginConfig validate_section(const RawSection& section,
                                   std::span<const sdk::ConfigKeySpec> specs,
                                   std::string_view owner,
                                   std::span<const std::string_view> ignored = {});

// Parses a spec's default_value text into a value of its type; throws ConfigError when the
// default itself is malformed (a bug in the plugin that declared it).
sdk::PluginConfig::Value parse_default(const sdk::ConfigKeySpec& spec, std::string_view owner);

}  // namespace loom
