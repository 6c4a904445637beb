// Fuzz target `config`: a TOML config file through every check `loom` makes before a run starts.
//
// Input: the text of a config file. Lines starting with "#set " (TOML comments) are also applied
// as command-line overrides, so `--set section.key=value` is fuzzed with the file it amends.
// Path: parse_config_text -> load_config_from (overrides, sections, engine keys, plugin choice,
// ranges) -> each chosen plugin's keys validated against a manifest, as resolve_plugins() does
// once the registry has loaded the plugin -> every value rendered as `loom config --explain` does.
// The manifests are built here rather than loaded, so no library is opened for a fuzzed name:
// the in-tree plugins' keys (fcfs, lfu) and, for any other name, a key of every type.
// Expected: loom::Error (ConfigError). Anything else escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "core/config/key_validation.h"
#include "core/config/raw_config.h"
#include "loom/error.h"

namespace {

using loom::sdk::ConfigKeySpec;
using loom::sdk::KeyType;
using loom::sdk::PluginKind;

const ConfigKeySpec kFcfsKeys[] = {
    {"max_prefill_chunk", KeyType::integer, "0", "most prompt tokens per sequence and step"},
};
const ConfigKeySpec kLfuKeys[] = {
    {"aging", KeyType::string, "dynamic", "dynamic | none"},
};
// Any other plugin name: one key of every type, as tests/core/plugin/fixtures/keyed_evictor.cpp.
const ConfigKeySpec kEveryTypeKeys[] = {
    {"capacity", KeyType::integer, "8", "an integer key"},
    {"ratio", KeyType::number, "0.5", "a number key"},
    {"verbose", KeyType::boolean, "false", "a boolean key"},
    {"label", KeyType::string, "plain", "a string key"},
    {"budget", KeyType::bytes, "1MiB", "a size key"},
};

std::span<const ConfigKeySpec> manifest_keys(PluginKind kind, std::string_view name) {
  if (kind == PluginKind::scheduler && name == "fcfs") return kFcfsKeys;
  if (kind == PluginKind::evictor && name == "lfu") return kLfuKeys;
  if (name == "lru" || name == "arc" || name == "paged" || name == "single") return loom::sdk::kNoKeys;
  return kEveryTypeKeys;
}

// What `loom config --explain` prints for a section: every key's value and origin.
std::size_t render(const loom::sdk::PluginConfig& values) {
  std::size_t chars = 0;
  for (const auto& [key, entry] : values.entries())
    chars += key.size() + loom::render_value(entry.value).size() + loom::describe_value(entry.value).size() +
             entry.origin.size();
  return chars;
}

void run(std::string_view text) {
  std::vector<std::string> overrides;
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    if (line.starts_with("#set ")) overrides.emplace_back(line.substr(5));
    begin = end + 1;
  }

  loom::Config config = loom::load_config_from(loom::parse_config_text(text, "fuzz.toml"), ".", overrides);
  std::size_t chars = render(config.model) + render(config.engine) + render(config.sampling);
  for (const loom::PluginChoice& choice : config.plugins) {
    chars += render(choice.engine_keys);
    const std::string label = std::string(loom::sdk::plugin_kind_name(choice.kind)) + " plugin '" + choice.plugin + "'";
    chars += render(loom::validate_section(choice.keys, manifest_keys(choice.kind, choice.plugin), label));
  }
  (void)chars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const loom::Error&) {
    // A refused config: expected.
  }
  return 0;
}
