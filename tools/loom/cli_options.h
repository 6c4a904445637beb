// Options several subcommands share, and the Boost.Program_options glue they all use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "core/plugin/plugin_registry.h"

namespace loom::cli {

namespace po = boost::program_options;

// --plugin-dir DIR (repeatable): folders searched for plugins before the standard ones.
void add_plugin_dir_option(po::options_description& options, std::vector<std::string>& dirs);

// --set section.key=value (repeatable).
void add_set_option(po::options_description& options, std::vector<std::string>& overrides);

// The config file a --config value names: the path itself when it exists; otherwise a bare name
// ("default", "gpu-bench.toml") is looked up among the configs installed with loom
// (<prefix>/share/loom/configs, beside the running binary). Anything else is returned as given,
// for the loader to report.
std::filesystem::path find_config(const std::string& value);

// The value of `--requests` for a generated workload, checked: 1 to kMaxWorkloadRequests.
std::size_t workload_request_count(std::int64_t value);

// The standard registry with the --plugin-dir folders first.
PluginRegistry make_registry(const std::vector<std::string>& plugin_dirs);

// Parses `args` into `vm`; unknown options and malformed values become UsageError with the
// subcommand named. Returns false when --help was given (usage already printed).
bool parse_or_help(const char* command, const char* synopsis, const po::options_description& options,
                   const po::positional_options_description& positional, std::span<const std::string> args,
                   po::variables_map& vm);

}  // namespace loom::cli
