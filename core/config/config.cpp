#include "core/config/config.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <thread>
#include <vector>

#include "core/common/suggest.h"
#include "core/config/key_validation.h"
#include "loom/error.h"

namespace loom {

namespace {

const RawSection kEmptySection;

std::vector<std::string> known_sections() {
  std::vector<std::string> names;
  for (const auto& spec : engine_section_specs()) names.emplace_back(spec.section);
  for (const auto& spec : plugin_section_specs()) names.emplace_back(spec.section);
  return names;
}

void check_known_sections(const RawConfig& raw) {
  const std::vector<std::string> names = known_sections();
  for (const auto& [name, section] : raw.sections) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw ConfigError(section.origin + ": unknown section [" + name + "]." + did_you_mean(name, names) +
                        " Sections: " + join_names(names) + ".");
    }
  }
}

const RawSection& section_or_empty(const RawConfig& raw, std::string_view name) {
  auto it = raw.sections.find(name);
  return it == raw.sections.end() ? kEmptySection : it->second;
}

RawSection named(const RawSection& section, std::string_view name) {
  RawSection copy = section;
  copy.name = name;
  return copy;
}

PluginChoice choose_plugin(const RawConfig& raw, const PluginSectionSpec& spec) {
  const RawSection section = named(section_or_empty(raw, spec.section), spec.section);
  PluginChoice choice{spec.kind, spec.section, spec.default_plugin, "default", {}, {}};

  if (auto it = section.entries.find("plugin"); it != section.entries.end()) {
    const auto* name = std::get_if<std::string>(&it->second.value);
    if (!name) {
      throw ConfigError(it->second.origin + ": [" + spec.section + "] plugin: expected a string (a " +
                        sdk::plugin_kind_name(spec.kind) + " plugin's name or a path to its .so), got " +
                        describe_value(it->second.value));
    }
    choice.plugin = *name;
    choice.origin = it->second.origin;
  }

  // The section is shared: engine-owned keys go to the engine, the rest to the plugin.
  RawSection engine_part{spec.section, section.origin, {}};
  choice.keys = RawSection{spec.section, section.origin, {}};
  for (const auto& [key, entry] : section.entries) {
    if (key == "plugin") continue;
    bool engine_owned = std::any_of(spec.engine_keys.begin(), spec.engine_keys.end(),
                                    [&name = key](const sdk::ConfigKeySpec& k) { return name == k.name; });
    (engine_owned ? engine_part : choice.keys).entries.emplace(key, entry);
  }
  choice.engine_keys = validate_section(engine_part, spec.engine_keys, "the engine");
  return choice;
}

// Semantic checks of engine values that types alone do not catch.
void check_ranges(const Config& config) {
  static const std::regex kDevice("cpu|cuda(:[0-9]+)?");
  const auto& engine = config.engine;
  if (!std::regex_match(engine.string("device"), kDevice))
    throw engine.invalid("device", "expected cpu, cuda or cuda:N, got \"" + engine.string("device") + "\"");
  for (const char* key : {"max_num_seqs", "max_num_batched_tokens"})
    if (engine.integer(key) <= 0) throw engine.invalid(key, "must be at least 1");
  for (const char* key : {"max_model_len", "num_threads", "seed"})
    if (engine.integer(key) < 0) throw engine.invalid(key, "must not be negative");
  // More threads than a few per core only slows the kernels down; many thousands hang or abort
  // the start-up. The bound depends on the machine the config runs on.
  const std::int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::int64_t max_threads = std::max<std::int64_t>(64, 8 * cores);
  if (engine.integer("num_threads") > max_threads)
    throw engine.invalid("num_threads", "is " + std::to_string(engine.integer("num_threads")) +
                                            ", more than this machine can use (" + std::to_string(cores) +
                                            " cores): at most " + std::to_string(max_threads) +
                                            ", or 0 for one thread per core");
  double utilization = engine.number("gpu_memory_utilization");
  if (!(utilization > 0.0 && utilization <= 1.0))
    throw engine.invalid("gpu_memory_utilization", "must be in (0, 1], e.g. 0.9");

  const std::string& dtype = config.model.string("dtype");
  if (dtype != "auto" && dtype != "fp32" && dtype != "bf16" && dtype != "fp16")
    throw config.model.invalid("dtype", "expected auto, fp32, bf16 or fp16, got \"" + dtype + "\"");

  const auto& sampling = config.sampling;
  if (!(sampling.number("temperature") >= 0.0) || std::isinf(sampling.number("temperature")))
    throw sampling.invalid("temperature", "must be a finite number >= 0 (0 = greedy)");
  double top_p = sampling.number("top_p");
  if (!(top_p > 0.0 && top_p <= 1.0)) throw sampling.invalid("top_p", "must be in (0, 1]");
  if (sampling.integer("top_k") < 0) throw sampling.invalid("top_k", "must be >= 0 (0 = off)");
  double min_p = sampling.number("min_p");
  if (!(min_p >= 0.0 && min_p <= 1.0)) throw sampling.invalid("min_p", "must be in [0, 1]");
  if (!(sampling.number("repetition_penalty") > 0.0))
    throw sampling.invalid("repetition_penalty", "must be > 0 (1 = off)");
  if (sampling.integer("max_tokens") < 0) throw sampling.invalid("max_tokens", "must not be negative");
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (!std::isfinite(sampling.number(key))) throw sampling.invalid(key, "must be a finite number (0 = off)");
  if (sampling.integer("min_tokens") < 0) throw sampling.invalid("min_tokens", "must not be negative");
  if (sampling.integer("min_tokens") > sampling.integer("max_tokens"))
    throw sampling.invalid("min_tokens", "must not exceed max_tokens (" + std::to_string(sampling.integer("max_tokens")) +
                                             ")");

  const auto& kv = config.kv();
  std::int64_t block_size = kv.integer("block_size");
  if (block_size < 1 || block_size > 1024 || (block_size & (block_size - 1)) != 0)
    throw kv.invalid("block_size", "must be a power of two between 1 and 1024, e.g. 16");
  if (kv.integer("num_blocks") < 0) throw kv.invalid("num_blocks", "must not be negative (0 = automatic)");
  if (const PluginChoice* drafter = config.plugin(sdk::PluginKind::drafter)) {
    if (drafter->engine_keys.integer("num_draft_tokens") < 1)
      throw drafter->engine_keys.invalid("num_draft_tokens", "must be at least 1");
  }
}

}  // namespace

const PluginChoice* Config::plugin(sdk::PluginKind kind) const {
  for (const auto& choice : plugins)
    if (choice.kind == kind) return &choice;
  return nullptr;
}

const sdk::PluginConfig& Config::kv() const {
  const PluginChoice* choice = plugin(sdk::PluginKind::kv_allocator);
  if (!choice) throw ConfigError("[kv] has no plugin");  // unreachable: the kind is required
  return choice->engine_keys;
}

Config load_config_from(RawConfig raw, const std::filesystem::path& base_dir,
                        std::span<const std::string> overrides) {
  for (const std::string& assignment : overrides) apply_override(raw, assignment);
  check_known_sections(raw);

  Config config;
  config.source = raw.source;
  config.base_dir = base_dir;
  for (const auto& spec : engine_section_specs()) {
    sdk::PluginConfig values =
        validate_section(named(section_or_empty(raw, spec.section), spec.section), spec.keys, "the engine");
    if (std::string_view(spec.section) == "model") config.model = std::move(values);
    else if (std::string_view(spec.section) == "engine") config.engine = std::move(values);
    else config.sampling = std::move(values);
  }
  for (const auto& spec : plugin_section_specs()) {
    PluginChoice choice = choose_plugin(raw, spec);
    bool optional = std::string_view(spec.default_plugin).empty();
    if (choice.plugin.empty() || choice.plugin == "none") {
      if (!optional) {
        throw ConfigError(choice.origin + ": [" + spec.section + "] plugin: a " +
                          sdk::plugin_kind_name(spec.kind) + " plugin is required; e.g. plugin = \"" +
                          spec.default_plugin + "\"");
      }
      // Any key of the section, the engine's own (num_draft_tokens) included, would do nothing.
      for (const auto& [key, entry] : section_or_empty(raw, spec.section).entries)
        if (key != "plugin")
          throw ConfigError(entry.origin + ": [" + spec.section + "] " + key +
                            " is set but no plugin is chosen; add plugin = \"<name>\" to [" + spec.section +
                            "] (`loom plugins --kind " + sdk::plugin_kind_name(spec.kind) +
                            "` lists them), or remove the key");
      continue;
    }
    config.plugins.push_back(std::move(choice));
  }
  check_ranges(config);
  return config;
}

Config load_config(const std::filesystem::path& path, std::span<const std::string> overrides) {
  std::filesystem::path base = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  return load_config_from(parse_config_file(path), base, overrides);
}

}  // namespace loom
