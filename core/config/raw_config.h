// A config file as written: sections of scalar values, each remembering where it came from.
//
// This is the only place that knows TOML. Later stages validate these values against key specs
// (core keys and plugin manifests) and turn them into typed settings.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "loom/plugin_config.h"

namespace loom {

struct RawEntry {
  sdk::PluginConfig::Value value;
  std::string origin;  // "configs/a.toml:12" or "--set engine.seed=3"
};

struct RawSection {
  std::string name;
  std::string origin;  // where the section header is
  std::map<std::string, RawEntry, std::less<>> entries;
};

struct RawConfig {
  std::string source;  // the file as the user named it, or a description of the text
  std::map<std::string, RawSection, std::less<>> sections;
};

// Parses TOML text. Throws ConfigError naming `source`, line and column for syntax errors,
// top-level keys outside a section, nested tables and arrays (Loom configs are flat).
RawConfig parse_config_text(std::string_view text, const std::string& source);

// Reads and parses a file; a missing or unreadable file is a ConfigError naming it.
RawConfig parse_config_file(const std::filesystem::path& path);

// Applies one command-line override "section.key=value". The value is read as a TOML value
// when it is one (42, 0.5, true, "quoted") and as a bare string otherwise (lfu, cuda:1).
// Throws ConfigError for a malformed assignment.
void apply_override(RawConfig& config, std::string_view assignment);

// A TOML-ish rendering of a value, for messages and `loom config --explain`.
std::string render_value(const sdk::PluginConfig::Value& value);

// "an integer", "a string (\"abc\")": what a value is, for type-mismatch messages.
std::string describe_value(const sdk::PluginConfig::Value& value);

}  // namespace loom
