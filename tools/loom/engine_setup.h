// Everything a run needs from a config: the plugins checked, the model and tokenizer loaded, the
// engine built. Shared by `loom generate` and `loom bench`.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/plugin/plugin_registry.h"

namespace loom::cli {

struct EngineSetup {
  Config config;
  std::unique_ptr<PluginRegistry> registry;
  std::unique_ptr<Engine> engine;
  double startup_s = 0;  // config, plugins, model and KV pool: everything before the first request
};

// Loads the config (the defaults when `config_file` is empty) with overrides, checks every plugin and its keys (before the model, which
// may be large), loads the model and the tokenizer ([model] tokenizer, else
// <model>/tokenizer.model or tokenizer.json when present) and builds the engine. Progress goes to `log`.
EngineSetup setup_engine(const std::string& config_file, const std::vector<std::string>& overrides,
                         const std::vector<std::string>& plugin_dirs, std::ostream& log);

// [model] path, relative paths taken from the config file's folder. Throws ConfigError when it is
// empty or does not exist.
std::filesystem::path model_path_of(const Config& config);

// [sampling] of the config as request defaults.
SamplingParams sampling_defaults(const Config& config);

}  // namespace loom::cli
