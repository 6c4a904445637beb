// Config files: every mistake is refused with file, line, key and the fix; overrides and
// defaults behave as documented.
#include "core/config/config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace loom {
namespace {

using loom::testing::message_of;

Config load(const std::string& text, std::vector<std::string> overrides = {}) {
  return load_config_from(parse_config_text(text, "test.toml"), ".", overrides);
}

std::string config_error(const std::string& text, std::vector<std::string> overrides = {}) {
  return message_of<ConfigError>([&] { load(text, overrides); });
}

TEST(Config, EmptyFileGivesEveryDefault) {
  Config config = load("");
  EXPECT_EQ(config.engine.string("device"), "cpu");
  EXPECT_EQ(config.engine.integer("max_num_seqs"), 64);
  EXPECT_EQ(config.engine.integer("max_num_batched_tokens"), 2048);
  EXPECT_DOUBLE_EQ(config.engine.number("gpu_memory_utilization"), 0.9);
  EXPECT_DOUBLE_EQ(config.sampling.number("temperature"), 0.0);
  EXPECT_EQ(config.sampling.integer("max_tokens"), 128);
  EXPECT_EQ(config.model.string("dtype"), "auto");
  EXPECT_EQ(config.kv().integer("block_size"), 16);
  EXPECT_TRUE(config.kv().boolean("prefix_caching"));
  ASSERT_NE(config.plugin(sdk::PluginKind::scheduler), nullptr);
  EXPECT_EQ(config.plugin(sdk::PluginKind::scheduler)->plugin, "fcfs");
  EXPECT_EQ(config.plugin(sdk::PluginKind::kv_allocator)->plugin, "paged");
  EXPECT_EQ(config.plugin(sdk::PluginKind::evictor)->plugin, "lru");
  EXPECT_EQ(config.plugin(sdk::PluginKind::attention)->plugin, "paged");
  EXPECT_EQ(config.plugin(sdk::PluginKind::parallel)->plugin, "single");
  EXPECT_EQ(config.plugin(sdk::PluginKind::kv_connector), nullptr);  // optional kinds are off
  EXPECT_EQ(config.plugin(sdk::PluginKind::drafter), nullptr);
  EXPECT_EQ(config.engine.origin("device"), "default");
}

TEST(Config, ValuesRememberTheirLine) {
  Config config = load("# comment\n[engine]\nseed = 7\n\nmax_num_seqs = 4\n");
  EXPECT_EQ(config.engine.integer("seed"), 7);
  EXPECT_EQ(config.engine.origin("seed"), "test.toml:3");
  EXPECT_EQ(config.engine.origin("max_num_seqs"), "test.toml:5");
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  std::string message = config_error("[engine]\nseed = 1\nmax_num_seqs = = 3\n");
  EXPECT_CONTAINS(message, "test.toml:3:");
  EXPECT_CONTAINS(message, "TOML syntax error");
}

TEST(Config, UnknownSectionSuggestsTheRightOne) {
  std::string message = config_error("[evictr]\nplugin = \"lru\"\n");
  EXPECT_CONTAINS(message, "test.toml:1: unknown section [evictr].");
  EXPECT_CONTAINS(message, "Did you mean 'evictor'?");
  EXPECT_CONTAINS(message, "Sections: model, engine, sampling, scheduler, kv, evictor");
}

TEST(Config, UnknownKeyNamesLineKeyAndAcceptedKeys) {
  std::string message = config_error("[engine]\nmax_num_seq = 3\n");
  EXPECT_CONTAINS(message, "test.toml:2: [engine] unknown key 'max_num_seq' for the engine.");
  EXPECT_CONTAINS(message, "Did you mean 'max_num_seqs'?");
  EXPECT_CONTAINS(message, "Accepted keys: device, max_num_seqs");
}

TEST(Config, WrongTypeSaysWhatWasExpectedAndShowsAnExample) {
  std::string message = config_error("[engine]\nmax_num_seqs = \"many\"\n");
  EXPECT_CONTAINS(message, "test.toml:2: [engine] max_num_seqs: expected integer, got a string (\"many\")");
  EXPECT_CONTAINS(message, "Example: max_num_seqs = 64");
  EXPECT_CONTAINS(config_error("[kv]\nprefix_caching = 1\n"), "expected boolean, got an integer (1)");
}

TEST(Config, IntegersAreAcceptedWhereNumbersAreExpectedButNotTheOtherWay) {
  EXPECT_DOUBLE_EQ(load("[sampling]\ntemperature = 1\n").sampling.number("temperature"), 1.0);
  EXPECT_CONTAINS(config_error("[engine]\nseed = 1.5\n"), "expected integer, got a number (1.5)");
}

TEST(Config, RangesAreChecked) {
  EXPECT_CONTAINS(config_error("[engine]\ngpu_memory_utilization = 1.5\n"),
                  "test.toml:2: [engine] gpu_memory_utilization: must be in (0, 1]");
  EXPECT_CONTAINS(config_error("[engine]\ndevice = \"tpu\"\n"), "expected cpu, cuda or cuda:N");
  EXPECT_CONTAINS(config_error("[kv]\nblock_size = 12\n"), "[kv] block_size: must be a power of two");
  EXPECT_CONTAINS(config_error("[model]\ndtype = \"int4\"\n"), "expected auto, fp32, bf16 or fp16");
  EXPECT_CONTAINS(config_error("[sampling]\ntop_p = 0\n"), "top_p: must be in (0, 1]");
  EXPECT_CONTAINS(config_error("[sampling]\ntemperature = inf\n"), "temperature: must be a finite number >= 0");
  EXPECT_CONTAINS(config_error("[sampling]\ntemperature = nan\n"), "temperature: must be a finite number >= 0");
  EXPECT_CONTAINS(config_error("[sampling]\nfrequency_penalty = inf\n"), "frequency_penalty: must be a finite number");
  EXPECT_CONTAINS(config_error("[sampling]\nmin_tokens = 200\nmax_tokens = 100\n"),
                  "min_tokens: must not exceed max_tokens (100)");
  EXPECT_EQ(load("[sampling]\nmin_tokens = 3\nfrequency_penalty = 0.5\n").sampling.integer("min_tokens"), 3);
  EXPECT_EQ(load("[engine]\ndevice = \"cuda:1\"\n").engine.string("device"), "cuda:1");
}

// Found by a hostile user: num_threads = 100000 hung before the model loaded.
TEST(Config, NumThreadsAboveWhatTheMachineCanUseIsRefusedNamingTheBound) {
  const std::string message = config_error("[engine]\nnum_threads = 100000\n");
  EXPECT_CONTAINS(message, "num_threads");
  EXPECT_CONTAINS(message, "is 100000, more than this machine can use");
  EXPECT_CONTAINS(message, "or 0 for one thread per core");
  EXPECT_EQ(load("[engine]\nnum_threads = 64\n").engine.integer("num_threads"), 64);
}

TEST(Config, SizesAcceptUnits) {
  EXPECT_EQ(load("[kv]\ncache_memory = \"512MiB\"\n").kv().integer("cache_memory"), 512ll << 20);
  EXPECT_EQ(load("[kv]\ncache_memory = 4096\n").kv().integer("cache_memory"), 4096);
  std::string message = config_error("[kv]\ncache_memory = \"12 parsecs\"\n");
  EXPECT_CONTAINS(message, "test.toml:2: [kv] cache_memory: expected size in bytes");
  EXPECT_CONTAINS(message, "\"512MiB\"");
}

TEST(Config, OverridesWinAndSayWhereTheyCameFrom) {
  Config config = load("[engine]\nmax_num_seqs = 4\n",
                       {"engine.max_num_seqs=8", "evictor.plugin=lfu", "engine.device=cuda:1",
                        "sampling.temperature=0.7", "kv.prefix_caching=false"});
  EXPECT_EQ(config.engine.integer("max_num_seqs"), 8);
  EXPECT_EQ(config.engine.origin("max_num_seqs"), "--set engine.max_num_seqs=8");
  EXPECT_EQ(config.plugin(sdk::PluginKind::evictor)->plugin, "lfu");  // a bare word is a string
  EXPECT_EQ(config.plugin(sdk::PluginKind::evictor)->origin, "--set evictor.plugin=lfu");
  EXPECT_EQ(config.engine.string("device"), "cuda:1");
  EXPECT_DOUBLE_EQ(config.sampling.number("temperature"), 0.7);
  EXPECT_FALSE(config.kv().boolean("prefix_caching"));
}

TEST(Config, MalformedOverridesAreRefused) {
  EXPECT_CONTAINS(config_error("", {"max_num_seqs=3"}), "--set max_num_seqs=3: expected section.key=value");
  EXPECT_CONTAINS(config_error("", {"engine.max_num_seqs"}), "expected section.key=value");
  EXPECT_CONTAINS(config_error("", {"engine.max_num_seq=3"}), "--set engine.max_num_seq=3: [engine] unknown key");
  EXPECT_CONTAINS(config_error("", {"engne.seed=3"}), "Did you mean 'engine'?");
  // Found by a hostile user: text after a line break in a value was dropped without a word.
  EXPECT_CONTAINS(config_error("", {"evictor.plugin=lru\njunk"}),
                  "--set evictor.plugin=lru\\njunk: holds a line break; a --set is one line");
  EXPECT_CONTAINS(config_error("", {"engine.seed=5\r"}), "--set engine.seed=5\\r: holds a line break");
}

TEST(Config, PluginSectionsSeparateEngineKeysFromPluginKeys) {
  Config config = load("[kv]\nplugin = \"paged\"\nblock_size = 32\nwatermark = 0.1\n");
  const PluginChoice* kv = config.plugin(sdk::PluginKind::kv_allocator);
  EXPECT_EQ(kv->origin, "test.toml:2");
  EXPECT_EQ(kv->engine_keys.integer("block_size"), 32);
  ASSERT_EQ(kv->keys.entries.size(), 1u);  // watermark is the plugin's to validate
  EXPECT_EQ(kv->keys.entries.begin()->first, "watermark");
}

TEST(Config, RequiredKindsNeedAPluginAndOptionalKindsNeedOneForTheirKeys) {
  EXPECT_CONTAINS(config_error("[scheduler]\nplugin = \"\"\n"), "a scheduler plugin is required; e.g. plugin = \"fcfs\"");
  EXPECT_CONTAINS(config_error("[kv_connector]\ncapacity = 3\n"),
                  "[kv_connector] capacity is set but no plugin is chosen");
  // An engine-owned key of an optional section does nothing without a plugin either.
  EXPECT_CONTAINS(config_error("[speculative]\nnum_draft_tokens = 3\n"),
                  "[speculative] num_draft_tokens is set but no plugin is chosen");
  Config with_drafter = load("[speculative]\nplugin = \"ngram\"\nnum_draft_tokens = 3\n");
  EXPECT_EQ(with_drafter.plugin(sdk::PluginKind::drafter)->engine_keys.integer("num_draft_tokens"), 3);
  EXPECT_CONTAINS(config_error("[scheduler]\nplugin = 3\n"), "[scheduler] plugin: expected a string");
}

TEST(Config, FlatStructureIsEnforced) {
  EXPECT_CONTAINS(config_error("seed = 3\n"), "test.toml:1: key 'seed' is outside any section");
  EXPECT_CONTAINS(config_error("[sampling]\nstop = [1, 2]\n"), "test.toml:2: [sampling] stop is an array");
}

TEST(Config, MissingFileIsNamed) {
  std::string message = message_of<ConfigError>([] { load_config("/nonexistent/loom.toml"); });
  EXPECT_CONTAINS(message, "cannot read config file '/nonexistent/loom.toml'");
}

TEST(Config, TheShippedConfigsLoad) {
  for (const char* name : {"default.toml"}) {
    std::filesystem::path path = std::filesystem::path(LOOM_SOURCE_DIR) / "configs" / name;
    Config config = load_config(path);
    EXPECT_EQ(config.base_dir, path.parent_path()) << name;
  }
}

}  // namespace
}  // namespace loom
