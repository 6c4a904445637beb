// `loom plugins`: lists the plugins in the search path, or describes one with its config keys.
#include <iomanip>
#include <iostream>

#include "core/config/config.h"
#include "core/plugin/plugin_registry.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"

namespace loom::cli {

namespace {

void print_search_path(const PluginRegistry& registry) {
  std::cout << "plugin search path (first match wins):\n";
  for (const auto& dir : registry.search_path())
    std::cout << "  " << dir.string() << (std::filesystem::is_directory(dir) ? "" : "   (not present)") << "\n";
}

int list_plugins(PluginRegistry& registry, const std::string& kind_filter) {
  print_search_path(registry);
  std::cout << "\n" << std::left << std::setw(14) << "KIND" << std::setw(14) << "NAME" << std::setw(10)
            << "VERSION" << "DESCRIPTION\n";
  // Every kind, in the order of the config's sections, so that a kind without a plugin shows too.
  const auto candidates = registry.scan();
  for (sdk::PluginKind kind : sdk::kAllPluginKinds) {
    const char* kind_name = sdk::plugin_kind_name(kind);
    if (!kind_filter.empty() && kind_filter != kind_name) continue;
    int shown = 0;
    for (const auto& candidate : candidates) {
      if (candidate.kind != kind) continue;
      ++shown;
      std::cout << std::setw(14) << kind_name << std::setw(14) << candidate.name;
      try {
        auto plugin = registry.load(candidate.kind, candidate.name);
        std::cout << std::setw(10) << plugin->version() << plugin->description() << "\n";
      } catch (const Error& e) {
        std::cout << std::setw(10) << "-" << "cannot be used: " << e.what() << "\n";
      }
    }
    if (shown == 0) std::cout << std::setw(14) << kind_name << "(none installed)\n";
  }
  return 0;
}

// The config section a kind is chosen in ([kv] for kv_allocator, [speculative] for drafter).
const char* section_of(sdk::PluginKind kind) {
  for (const auto& spec : plugin_section_specs())
    if (spec.kind == kind) return spec.section;
  return sdk::plugin_kind_name(kind);
}

void describe(const LoadedPlugin& plugin) {
  std::cout << sdk::plugin_kind_name(plugin.kind()) << "/" << plugin.name() << " " << plugin.version() << "\n"
            << "  " << plugin.description() << "\n"
            << "  file: " << plugin.path().string() << "\n"
            << "  use:  [" << section_of(plugin.kind()) << "] plugin = \"" << plugin.name() << "\"\n";
  if (plugin.keys().empty()) {
    std::cout << "  config keys: none\n";
    return;
  }
  std::cout << "  config keys:\n";
  for (const auto& key : plugin.keys()) {
    std::cout << "    " << std::left << std::setw(22) << key.name << std::setw(10) << sdk::key_type_name(key.type)
              << " default " << (key.default_value && *key.default_value ? key.default_value : "\"\"") << "\n"
              << "    " << std::setw(22) << "" << key.help << "\n";
  }
}

// NAME may be "lru", "evictor/lru" or a path to a library.
int describe_plugin(PluginRegistry& registry, const std::string& what) {
  if (what.find(".so") != std::string::npos || what.find("./") != std::string::npos || what.starts_with("/")) {
    describe(*registry.load_file(what));
    return 0;
  }
  std::string kind_name, name = what;
  if (auto slash = what.find('/'); slash != std::string::npos) {
    kind_name = what.substr(0, slash);
    name = what.substr(slash + 1);
    sdk::PluginKind kind;
    if (!parse_plugin_kind(kind_name, kind))
      throw UsageError("'" + kind_name + "' is not a plugin kind (scheduler, kv_allocator, evictor, attention, "
                       "parallel, kv_connector, drafter)");
    describe(*registry.load(kind, name));
    return 0;
  }
  int found = 0;
  for (const auto& candidate : registry.scan()) {
    if (candidate.name != name) continue;
    if (found++) std::cout << "\n";
    describe(*registry.load(candidate.kind, candidate.name));
  }
  if (!found) {
    throw PluginError("no plugin named '" + name + "' in the search path; `loom plugins` lists what there is");
  }
  return 0;
}

}  // namespace

int run_plugins(std::span<const std::string> args) {
  std::vector<std::string> plugin_dirs;
  std::string describe_name, kind;
  po::options_description options("loom plugins");
  add_plugin_dir_option(options, plugin_dirs);
  options.add_options()("describe", po::value(&describe_name), "describe one plugin: NAME, KIND/NAME or a path")(
      "kind", po::value(&kind), "list only plugins of this kind");
  po::variables_map vm;
  if (!parse_or_help("plugins", "loom plugins [--kind KIND] [--describe NAME] [--plugin-dir DIR]...", options, {},
                     args, vm))
    return 0;
  sdk::PluginKind parsed;
  if (!kind.empty() && !parse_plugin_kind(kind, parsed))
    throw UsageError("--kind " + kind + ": not a plugin kind (scheduler, kv_allocator, evictor, attention, "
                     "parallel, kv_connector, drafter)");
  PluginRegistry registry = make_registry(plugin_dirs);
  return describe_name.empty() ? list_plugins(registry, kind) : describe_plugin(registry, describe_name);
}

}  // namespace loom::cli
