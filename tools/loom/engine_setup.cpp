#include "tools/loom/engine_setup.h"

#include <chrono>
#include <cstdio>
#include <ostream>
#include <system_error>

#include "core/config/byte_size.h"
#include "core/config/raw_config.h"
#include "core/engine/engine_plugins.h"
#include "core/io/model_loader.h"
#include "core/model/config_adapters.h"
#include "core/plugin/plugin_setup.h"
#include "loom/kernels/cpu/parallel_for.h"
#include "tools/loom/cli_options.h"

namespace loom::cli {

namespace fs = std::filesystem;

namespace {

// "0.42 ms", "1.37 s": plain numbers for people.
std::string seconds_text(double seconds) {
  char text[32];
  if (seconds < 1.0)
    std::snprintf(text, sizeof text, "%.2f ms", seconds * 1e3);
  else
    std::snprintf(text, sizeof text, "%.2f s", seconds);
  return text;
}

}  // namespace

SamplingParams sampling_defaults(const Config& config) {
  const auto& s = config.sampling;
  SamplingParams p;
  p.temperature = s.number("temperature");
  p.top_p = s.number("top_p");
  p.top_k = static_cast<std::int32_t>(s.integer("top_k"));
  p.min_p = s.number("min_p");
  p.repetition_penalty = s.number("repetition_penalty");
  p.presence_penalty = s.number("presence_penalty");
  p.frequency_penalty = s.number("frequency_penalty");
  p.min_tokens = static_cast<std::int32_t>(s.integer("min_tokens"));
  p.max_tokens = static_cast<std::int32_t>(s.integer("max_tokens"));
  p.ignore_eos = s.boolean("ignore_eos");
  return p;
}

fs::path model_path_of(const Config& config) {
  const std::string& value = config.model.string("path");
  if (value.empty())  // named by the config file: the key's origin is only "default"
    throw ConfigError(config.source + ": [model] path: no model given: set it to a Hugging Face directory or a .bin file");
  fs::path path = value;
  if (path.is_relative()) path = fs::weakly_canonical(config.base_dir / path);
  if (!fs::exists(path))
    throw config.model.invalid("path", "'" + path.string() + "' does not exist" +
                                           (value.find("build/models") != std::string::npos
                                                ? " (tools/demo.sh generates the demo model)"
                                                : ""));
  return path;
}

EngineSetup setup_engine(const std::string& config_file, const std::vector<std::string>& overrides,
                         const std::vector<std::string>& plugin_dirs, std::ostream& log) {
  const auto begin = std::chrono::steady_clock::now();
  EngineSetup setup;
  setup.config = config_file.empty()
                     ? load_config_from(parse_config_text("", "(no --config: the defaults)"), fs::current_path(), overrides)
                     : load_config(find_config(config_file), overrides);
  setup.registry = std::make_unique<PluginRegistry>(make_registry(plugin_dirs));
  const ResolvedPlugins resolved = resolve_plugins(setup.config, *setup.registry);  // a bad plugin before a model

  const Config& config = setup.config;
  const fs::path model_path = model_path_of(config);
  const io::ModelConfig model_config = io::load_model_config(model_path);
  // Keys a plugin refuses only when constructed, before the weights load.
  try_policy_plugins(config, resolved, *setup.registry, shape_of(model_config, 4));
  if (std::int64_t threads = config.engine.integer("num_threads"); threads > 0) {
    try {
      kernels::cpu::set_num_threads(static_cast<int>(threads));
    } catch (const std::system_error& e) {
      throw config.engine.invalid("num_threads", e.what());
    }
  }

  const auto start = std::chrono::steady_clock::now();
  std::optional<Tokenizer> tokenizer;
  fs::path tokenizer_path = config.model.string("tokenizer");
  const bool tokenizer_configured = !tokenizer_path.empty();
  if (tokenizer_configured && tokenizer_path.is_relative()) tokenizer_path = config.base_dir / tokenizer_path;
  if (tokenizer_path.empty()) tokenizer_path = Tokenizer::find_beside(model_path);
  if (!tokenizer_path.empty()) tokenizer = Tokenizer::load(tokenizer_path);
  // A tokenizer of another model would make prompts of ids the model does not have: every text
  // request would fail alone. Checked before the weights load.
  if (const std::string why = tokenizer ? tokenizer->mismatch(model_config.vocab_size) : ""; !why.empty()) {
    if (tokenizer_configured) throw config.model.invalid("tokenizer", why);
    throw ModelError("the tokenizer beside the model, " + tokenizer_path.string() + ", " + why +
                     " (or remove it and prompt with token ids)");
  }
  io::LoadedModel model = io::load_model(model_path);
  log << "loom: loaded " << model_path.string() << " (" << io::architecture_hf_name(model.config.architecture) << ", "
      << model.config.num_hidden_layers << " layers, vocab " << model.config.vocab_size << ")"
      << (tokenizer ? ", tokenizer " + tokenizer_path.string() : std::string(", no tokenizer: token-id prompts only"))
      << " in " << seconds_text(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count())
      << "\n";
  setup.engine = std::make_unique<Engine>(config, *setup.registry, std::move(model), std::move(tokenizer));
  const EngineStats stats = setup.engine->stats();
  const sdk::ModelShape shape = setup.engine->model().shape();
  const std::uint64_t kv_bytes = 2ull * shape.num_layers * shape.num_kv_heads * shape.head_dim *
                                 shape.kv_bytes_per_element * stats.num_blocks * stats.block_size;
  log << "loom: " << setup.engine->model().describe() << "; KV cache " << stats.num_blocks << " blocks x "
      << stats.block_size << " tokens = " << stats.num_blocks * stats.block_size << " tokens ("
      << format_byte_size(kv_bytes) << ")\n";
  setup.startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return setup;
}

}  // namespace loom::cli
