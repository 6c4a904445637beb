// Fuzz target `plugin_manifest`: the manifest a plugin library hands the engine, and what the
// engine does with one it accepts.
//
// Input: a manifest written as text, one field per line (absent fields are null pointers; the
// word (null) stands for a null string inside a `key` line):
//   abi_version 1            kind evictor (or a number)   name lru
//   version 1.0.0            description Least recently used
//   factory                  (a non-null factory; it is never called)
//   key NAME TYPE DEFAULT HELP...   (TYPE: integer, number, boolean, string, bytes or a number)
//   set evictor.capacity=16  (a --set override of the plugin's section)
//   keys (null)              (the keys pointer is null, whatever the count of key lines)
// abi_version defaults to this engine's, so most inputs get past the first check.
// Path: check_manifest (what PluginRegistry::load_checked runs on every library), then, when it
// passes, what the registry and `loom` do with the manifest: LoadedPlugin, its label and the
// strings `loom plugins --describe` prints, the keys' defaults and the overrides validated
// against them (validate_section, as resolve_plugins does). What check_manifest promises about
// an accepted manifest is checked; a broken promise aborts.
// Expected: loom::Error (PluginError, ConfigError). Anything else escaping, or a sanitizer
// report, is a bug.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/key_validation.h"
#include "core/config/raw_config.h"
#include "core/plugin/plugin_registry.h"
#include "loom/error.h"

namespace {

using loom::sdk::ConfigKeySpec;
using loom::sdk::KeyType;
using loom::sdk::PluginKind;

std::unique_ptr<loom::sdk::Plugin> never_called(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig&) {
  std::abort();
}

template <typename T>
T number_or(std::string_view text, T fallback) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : fallback;
}

// The fuzz input as a manifest; owns every string the manifest points to.
struct ManifestInput {
  loom::sdk::PluginManifest manifest{
      loom::sdk::kAbiVersion, PluginKind::evictor, nullptr, nullptr, nullptr, nullptr, 0, nullptr};
  std::deque<std::string> strings;
  std::vector<ConfigKeySpec> keys;
  std::vector<std::string> overrides;
  bool null_keys = false;

  const char* keep(std::string_view text) {
    if (text == "(null)") return nullptr;
    return strings.emplace_back(text).c_str();
  }

  // "NAME TYPE DEFAULT HELP..." -> a key spec; missing words are null.
  void add_key(std::string_view rest) {
    std::string_view words[3];
    for (auto& word : words) {
      std::size_t space = rest.find(' ');
      word = rest.substr(0, space);
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
    ConfigKeySpec spec{keep(words[0]), KeyType::integer, keep(words[2]), keep(rest)};
    static constexpr std::string_view kTypes[] = {"integer", "number", "boolean", "string", "bytes"};
    spec.type = static_cast<KeyType>(number_or<std::uint32_t>(words[1], 0));
    for (std::uint32_t i = 0; i < 5; ++i)
      if (words[1] == kTypes[i]) spec.type = static_cast<KeyType>(i);
    keys.push_back(spec);
  }

  explicit ManifestInput(std::string_view text) {
    for (std::size_t begin = 0; begin < text.size();) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view line = text.substr(begin, end - begin);
      begin = end + 1;
      const std::size_t space = line.find(' ');
      const std::string_view field = line.substr(0, space);
      const std::string_view value = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
      if (field == "abi_version") {
        manifest.abi_version = number_or<std::uint32_t>(value, 0);
      } else if (field == "kind") {
        PluginKind kind{};
        manifest.kind =
            loom::parse_plugin_kind(value, kind) ? kind : static_cast<PluginKind>(number_or<std::uint32_t>(value, 0));
      } else if (field == "name") {
        manifest.name = keep(value);
      } else if (field == "version") {
        manifest.version = keep(value);
      } else if (field == "description") {
        manifest.description = keep(value);
      } else if (field == "factory") {
        manifest.create = &never_called;
      } else if (field == "key") {
        add_key(value);
      } else if (field == "set") {
        overrides.emplace_back(value);
      } else if (field == "keys") {
        null_keys = value == "(null)";
      }
    }
    manifest.keys = null_keys ? nullptr : keys.data();
    manifest.num_keys = keys.size();
  }
};

[[noreturn]] void broken_promise(const char* what) {
  std::fprintf(stderr, "check_manifest accepted a manifest, but %s\n", what);
  std::abort();
}

// What an accepted manifest promises (plugin_registry.h) and the engine and `loom plugins
// --describe` rely on: every string they print is there, every key has a known type.
void check_promises(const loom::LoadedPlugin& plugin) {
  if (std::string_view(loom::sdk::plugin_kind_name(plugin.kind())) == "unknown") broken_promise("its kind is unknown");
  std::size_t chars = plugin.label().size() + plugin.version().size() + plugin.description().size();
  for (const ConfigKeySpec& key : plugin.keys()) {
    if (!key.name || !key.default_value || !key.help) broken_promise("a key has a null string");
    if (std::string_view(loom::sdk::key_type_name(key.type)) == "?") broken_promise("a key's type is unknown");
    chars += std::strlen(key.name) + std::strlen(key.default_value) + std::strlen(key.help);
  }
  (void)chars;
}

void run(std::string_view text) {
  ManifestInput input(text);
  loom::check_manifest(&input.manifest, "fuzz/libloom_evictor_fuzz.so");

  loom::LoadedPlugin plugin(nullptr, &input.manifest, "fuzz/libloom_evictor_fuzz.so");
  check_promises(plugin);
  const std::string label = plugin.label();

  // Every default parses (check_manifest checked), so a section of defaults only is valid.
  loom::RawSection defaults_only;
  defaults_only.name = loom::sdk::plugin_kind_name(plugin.kind());
  loom::sdk::PluginConfig values;
  try {
    values = loom::validate_section(defaults_only, plugin.keys(), label);
  } catch (const loom::ConfigError&) {
    broken_promise("its defaults do not validate");
  }

  loom::RawConfig raw;
  for (const std::string& assignment : input.overrides) loom::apply_override(raw, assignment);
  for (const auto& [name, section] : raw.sections) {
    values = loom::validate_section(section, plugin.keys(), label);
    for (const auto& [key, entry] : values.entries()) (void)loom::render_value(entry.value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const loom::Error&) {
  }
  return 0;
}
