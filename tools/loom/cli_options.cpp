#include "tools/loom/cli_options.h"

#include <iostream>

#include "core/workloads/workload.h"
#include "loom/error.h"

namespace loom::cli {

void add_plugin_dir_option(po::options_description& options, std::vector<std::string>& dirs) {
  options.add_options()("plugin-dir", po::value(&dirs)->composing(),
                        "search this folder for plugins first (repeatable)");
}

void add_set_option(po::options_description& options, std::vector<std::string>& overrides) {
  options.add_options()("set", po::value(&overrides)->composing(),
                        "override a config key: --set section.key=value (repeatable)");
}

std::filesystem::path find_config(const std::string& value) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (value.empty() || fs::exists(value, ec) || value.find('/') != std::string::npos) return value;
  const fs::path prefix = installation_prefix();
  if (prefix.empty()) return value;
  const fs::path installed = prefix / "share/loom/configs";
  for (const fs::path& candidate : {installed / value, installed / (value + ".toml")})
    if (fs::is_regular_file(candidate, ec)) return candidate;
  return value;
}

std::size_t workload_request_count(std::int64_t value) {
  if (value < 1 || value > static_cast<std::int64_t>(kMaxWorkloadRequests))
    throw UsageError("--requests " + std::to_string(value) + ": expected 1 to " + std::to_string(kMaxWorkloadRequests) +
                     " (the trace is built in memory)");
  return static_cast<std::size_t>(value);
}

PluginRegistry make_registry(const std::vector<std::string>& plugin_dirs) {
  std::vector<std::filesystem::path> dirs(plugin_dirs.begin(), plugin_dirs.end());
  return PluginRegistry(PluginRegistry::default_search_path(dirs));
}

bool parse_or_help(const char* command, const char* synopsis, const po::options_description& options,
                   const po::positional_options_description& positional, std::span<const std::string> args,
                   po::variables_map& vm) {
  po::options_description all(options);
  all.add_options()("help,h", "show this help");
  try {
    std::vector<std::string> argv(args.begin(), args.end());
    po::store(po::command_line_parser(argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << synopsis << "\n\n" << all << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see loom " + command + " --help)");
  }
  return true;
}

}  // namespace loom::cli
