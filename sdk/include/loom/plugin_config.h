// A plugin's own section of the run's config, already checked against the plugin's manifest.
//
// The engine validates every key a user wrote against the ConfigKeySpec list in the manifest
// (unknown keys and type mismatches are refused before any plugin is constructed) and fills in
// the defaults, so a plugin reads values without checking for presence or type. A plugin that
// finds a value it cannot accept (e.g. a negative capacity) throws invalid(key, why), which
// names the config file and line.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "loom/error.h"

namespace loom::sdk {

// Types a plugin config key may have. `bytes` accepts an integer or a size with a unit
// ("512MiB", "2GB"); the value is a byte count.
enum class KeyType : std::uint32_t { integer, number, boolean, string, bytes };

inline const char* key_type_name(KeyType type) {
  switch (type) {
    case KeyType::integer: return "integer";
    case KeyType::number: return "number";
    case KeyType::boolean: return "boolean";
    case KeyType::string: return "string";
    case KeyType::bytes: return "size in bytes (e.g. 4096, \"512MiB\")";
  }
  return "?";
}

class PluginConfig {
 public:
  using Value = std::variant<std::int64_t, double, bool, std::string>;

  struct Entry {
    Value value;
    std::string origin;  // "file.toml:12", "--set evictor.x=1" or "default"
  };

  PluginConfig() = default;
  explicit PluginConfig(std::string section) : section_(std::move(section)) {}

  // Typed reads. Precondition: `key` is declared in the manifest with that type (integer and
  // bytes keys read with integer()); otherwise throws ConfigError (a bug in the plugin).
  std::int64_t integer(std::string_view key) const { return get<std::int64_t>(key); }
  double number(std::string_view key) const { return get<double>(key); }
  bool boolean(std::string_view key) const { return get<bool>(key); }
  const std::string& string(std::string_view key) const { return get<std::string>(key); }

  bool contains(std::string_view key) const { return entries_.find(key) != entries_.end(); }
  const std::string& section() const { return section_; }
  const std::map<std::string, Entry, std::less<>>& entries() const { return entries_; }

  // Where the value of `key` came from, for messages.
  std::string origin(std::string_view key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? std::string("default") : it->second.origin;
  }

  // The error a plugin throws for a value it cannot accept; names where the value came from.
  ConfigError invalid(std::string_view key, std::string_view why) const {
    return ConfigError(origin(key) + ": [" + section_ + "] " + std::string(key) + ": " +
                       std::string(why));
  }

  void set(std::string key, Value value, std::string origin) {
    entries_[std::move(key)] = Entry{std::move(value), std::move(origin)};
  }

 private:
  template <typename T>
  const T& get(std::string_view key) const {
    auto it = entries_.find(key);
    if (it == entries_.end())
      throw ConfigError("[" + section_ + "] " + std::string(key) +
                        ": the plugin read a key its manifest does not declare");
    if (const T* value = std::get_if<T>(&it->second.value)) return *value;
    throw ConfigError("[" + section_ + "] " + std::string(key) +
                      ": the plugin read it with a type other than the one its manifest declares");
  }

  std::string section_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace loom::sdk
