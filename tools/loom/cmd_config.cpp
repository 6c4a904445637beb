// `loom config --explain FILE`: checks a config completely (engine keys, plugins, plugin keys)
// and prints it fully resolved, each value with where it came from.
#include <iostream>
#include <sstream>

#include "core/config/config.h"
#include "core/config/raw_config.h"
#include "core/engine/engine_plugins.h"
#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "core/model/config_adapters.h"
#include "core/plugin/plugin_setup.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"

namespace loom::cli {

namespace {

void print_value_line(const std::string& key, const sdk::PluginConfig::Value& value, const std::string& origin,
                      const char* help) {
  std::string line = key + " = " + render_value(value);
  if (line.size() < 40) line.resize(40, ' ');
  std::cout << line << "  # " << origin;
  if (help && *help) std::cout << " | " << help;
  std::cout << "\n";
}

void print_section(const sdk::PluginConfig& values, std::span<const sdk::ConfigKeySpec> specs) {
  for (const auto& spec : specs) {
    const auto& entry = values.entries().at(spec.name);
    print_value_line(spec.name, entry.value, entry.origin, spec.help);
  }
}

}  // namespace

int run_config(std::span<const std::string> args) {
  std::vector<std::string> plugin_dirs, overrides;
  std::string file;
  po::options_description options("loom config");
  options.add_options()("explain", po::value(&file)->required(), "the config file to check and print resolved");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("config", "loom config --explain FILE [--set section.key=value]... [--plugin-dir DIR]...", options,
                     {}, args, vm))
    return 0;

  Config config = load_config(find_config(file), overrides);
  PluginRegistry registry = make_registry(plugin_dirs);
  ResolvedPlugins plugins = resolve_plugins(config, registry);
  // Construct the policy plugins as `loom generate` would before loading the model, with the
  // model's shape when its config can be read (a stand-in shape otherwise: explaining a config
  // does not need the model).
  std::string tried_with = "a stand-in model shape (the config's model cannot be read here)";
  sdk::ModelShape shape = shape_of(io::tiny_config(io::Architecture::kLlama), 4);
  bool model_known = false;
  try {
    shape = shape_of(io::load_model_config(model_path_of(config)), 4);
    tried_with = "the model's shape";
    model_known = true;
  } catch (const Error&) {
  }
  try_policy_plugins(config, plugins, registry, shape, model_known);

  std::cout << "# " << config.source << ", fully resolved: every key, with where its value came from.\n";
  std::cout << "# The policy plugins were constructed with these values and " << tried_with << ".\n";
  for (const auto& spec : engine_section_specs()) {
    std::cout << "\n[" << spec.section << "]\n";
    const sdk::PluginConfig& values = std::string_view(spec.section) == "model"    ? config.model
                                      : std::string_view(spec.section) == "engine" ? config.engine
                                                                                   : config.sampling;
    print_section(values, spec.keys);
  }
  for (const auto& section_spec : plugin_section_specs()) {
    const ResolvedPlugin* plugin = plugins.find(section_spec.kind);
    std::cout << "\n[" << section_spec.section << "]\n";
    if (!plugin) {
      std::cout << "# off: no " << sdk::plugin_kind_name(section_spec.kind) << " plugin chosen\n";
      continue;
    }
    std::ostringstream about;
    about << plugin->choice->origin << " | " << plugin->library->label() << " v" << plugin->library->version();
    print_value_line("plugin", plugin->choice->plugin, about.str(), nullptr);
    print_section(plugin->choice->engine_keys, section_spec.engine_keys);
    print_section(plugin->config, plugin->library->keys());
  }
  return 0;
}

}  // namespace loom::cli
