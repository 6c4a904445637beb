#include "core/config/raw_config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "loom/error.h"

namespace loom {

namespace {

std::string at(const std::string& source, const toml::source_region& where) {
  return source + ":" + std::to_string(where.begin.line);
}

// Converts one TOML node to a scalar; arrays and tables are refused with the place named.
sdk::PluginConfig::Value to_value(const toml::node& node, const std::string& where,
                                  std::string_view section, std::string_view key) {
  if (auto v = node.as_integer()) return static_cast<std::int64_t>(v->get());
  if (auto v = node.as_floating_point()) return v->get();
  if (auto v = node.as_boolean()) return v->get();
  if (auto v = node.as_string()) return v->get();
  std::string what = node.is_array() ? "an array" : node.is_table() ? "a table" : "a date or time";
  throw ConfigError(where + ": [" + std::string(section) + "] " + std::string(key) + " is " + what +
                    "; Loom config values are single numbers, booleans or strings");
}

}  // namespace

RawConfig parse_config_text(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw ConfigError(source + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) +
                      ": TOML syntax error: " + std::string(e.description()));
  }

  RawConfig config;
  config.source = source;
  for (auto&& [name, node] : root) {
    std::string section_name(name.str());
    const toml::table* table = node.as_table();
    if (!table) {
      throw ConfigError(at(source, node.source()) + ": key '" + section_name +
                        "' is outside any section; put it under its section, e.g. [engine]");
    }
    RawSection& section = config.sections[section_name];
    section.name = section_name;
    section.origin = at(source, table->source());
    for (auto&& [key, value] : *table) {
      std::string where = at(source, value.source());
      section.entries[std::string(key.str())] =
          RawEntry{to_value(value, where, section_name, key.str()), where};
    }
  }
  return config;
}

RawConfig parse_config_file(const std::filesystem::path& path) {
  // An ifstream opens a folder and reads it as empty, which would run with every default.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError("config file '" + path.string() +
                      "' is a folder; give a TOML file in it (configs/default.toml is a complete example)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("cannot read config file '" + path.string() +
                      "': no such file or not readable (configs/default.toml is a complete example)");
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), path.string());
}

void apply_override(RawConfig& config, std::string_view assignment) {
  if (assignment.find_first_of("\r\n") != std::string_view::npos) {
    // Shown escaped: the message stays one line, and the break is visible.
    std::string shown;
    for (char c : assignment) shown += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r") : std::string(1, c);
    throw ConfigError("--set " + shown + ": holds a line break; a --set is one line (give one --set per key)");
  }
  const std::string origin = "--set " + std::string(assignment);
  auto eq = assignment.find('=');
  auto dot = assignment.find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos || dot > eq || dot == 0 ||
      dot + 1 == eq) {
    throw ConfigError(origin + ": expected section.key=value, e.g. --set evictor.plugin=lfu");
  }
  std::string section_name(assignment.substr(0, dot));
  std::string key(assignment.substr(dot + 1, eq - dot - 1));
  std::string text(assignment.substr(eq + 1));

  sdk::PluginConfig::Value value = text;
  try {
    toml::table parsed = toml::parse("v = " + text);
    if (const toml::node* node = parsed.get("v"); node && !node->is_array() && !node->is_table())
      value = to_value(*node, origin, section_name, key);
  } catch (const toml::parse_error&) {
    // Not a TOML value: a bare word such as lfu or cuda:1 is meant as a string.
  }
  RawSection& section = config.sections[section_name];
  if (section.name.empty()) {
    section.name = section_name;
    section.origin = origin;
  }
  section.entries[key] = RawEntry{std::move(value), origin};
}

std::string render_value(const sdk::PluginConfig::Value& value) {
  struct Render {
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      std::ostringstream out;
      out << v;
      std::string s = out.str();
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const {
      std::string out = "\"";
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
      }
      return out + "\"";
    }
  };
  return std::visit(Render{}, value);
}

std::string describe_value(const sdk::PluginConfig::Value& value) {
  switch (value.index()) {
    case 0: return "an integer (" + render_value(value) + ")";
    case 1: return "a number (" + render_value(value) + ")";
    case 2: return "a boolean (" + render_value(value) + ")";
    default: return "a string (" + render_value(value) + ")";
  }
}

}  // namespace loom
