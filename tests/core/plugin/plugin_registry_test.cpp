// The registry loads real plugin libraries and refuses every broken one with a clear message.
#include "core/plugin/plugin_registry.h"

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "core/config/key_validation.h"
#include "core/plugin/plugin_setup.h"
#include "loom/evictor.h"
#include "loom/parallel.h"
#include "support/expect_error.h"

namespace loom {
namespace {

namespace fs = std::filesystem;
using loom::testing::message_of;
using sdk::PluginKind;

const fs::path kFixtures = LOOM_FIXTURE_PLUGIN_DIR;

PluginRegistry fixture_registry() {
  std::vector<fs::path> dirs{kFixtures};
  return PluginRegistry(PluginRegistry::default_search_path(dirs));
}

sdk::PluginConfig defaults_of(const LoadedPlugin& plugin, RawSection section = {}) {
  section.name = "evictor";
  return validate_section(section, plugin.keys(), plugin.label());
}

TEST(PluginRegistry, FindsInTreePluginsInTheBuildTree) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto names = registry.available(PluginKind::evictor);
  EXPECT_NE(std::find(names.begin(), names.end(), "lru"), names.end());
  auto lru = registry.load(PluginKind::evictor, "lru");
  EXPECT_EQ(lru->name(), "lru");
  EXPECT_EQ(lru->kind(), PluginKind::evictor);
  EXPECT_FALSE(lru->version().empty());
  EXPECT_EQ(lru->path().filename(), "libloom_evictor_lru.so");
}

TEST(PluginRegistry, SearchPathPutsCommandLineThenEnvironmentFirst) {
  setenv("LOOM_PLUGIN_PATH", "/env/one:/env/two", 1);
  std::vector<fs::path> cli{"/cli"};
  auto dirs = PluginRegistry::default_search_path(cli);
  unsetenv("LOOM_PLUGIN_PATH");
  ASSERT_GE(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], "/cli");
  EXPECT_EQ(dirs[1], "/env/one");
  EXPECT_EQ(dirs[2], "/env/two");
  EXPECT_EQ(dirs[3].filename(), "plugins");  // the build tree's lib/loom/plugins
}

TEST(PluginRegistry, ObjectKeepsItsLibraryAliveAfterTheRegistryIsGone) {
  PluginPtr<sdk::Evictor> evictor;
  {
    PluginRegistry registry(PluginRegistry::default_search_path());
    auto lru = registry.load(PluginKind::evictor, "lru");
    evictor = lru->create<sdk::Evictor>(sdk::EngineInfo{}, defaults_of(*lru));
  }
  // The registry and the LoadedPlugin are destroyed; the code must still be mapped.
  evictor->add_candidate(3, 33, 0);
  evictor->add_candidate(5, 55, 1);
  EXPECT_EQ(evictor->num_candidates(), 2u);
  EXPECT_EQ(evictor->evict(2), 3);
  evictor.reset();  // runs the plugin's destructor, then unloads
}

TEST(PluginRegistry, LoadsAPluginByPathRelativeToTheConfigFolder) {
  PluginRegistry registry({});
  auto keyed = registry.load(PluginKind::evictor, "libloom_evictor_keyed.so", kFixtures);
  EXPECT_EQ(keyed->name(), "keyed");
  EXPECT_EQ(keyed->version(), "2.1.0");
  EXPECT_EQ(keyed->keys().size(), 5u);
  // The same file is loaded once.
  EXPECT_EQ(registry.load(PluginKind::evictor, (kFixtures / "libloom_evictor_keyed.so").string()), keyed);
}

TEST(PluginRegistry, UnknownNameListsWhatIsAvailableAndSuggests) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "lur"); });
  EXPECT_CONTAINS(message, "evictor plugin 'lur' not found");
  EXPECT_CONTAINS(message, "libloom_evictor_lur.so");
  EXPECT_CONTAINS(message, "lib/loom/plugins");          // the folders searched
  EXPECT_CONTAINS(message, "Did you mean 'lru'?");
  EXPECT_CONTAINS(message, "Available evictor plugins:");
  EXPECT_CONTAINS(message, "lru");
}

TEST(PluginRegistry, MissingPathIsNamed) {
  PluginRegistry registry({});
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "./nowhere/libx.so"); });
  EXPECT_CONTAINS(message, "nowhere/libx.so");
  EXPECT_CONTAINS(message, "does not exist");
}

TEST(PluginRegistry, RefusesAPluginOfTheWrongKind) {
  PluginRegistry registry = fixture_registry();
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "liar"); });
  EXPECT_CONTAINS(message, "libloom_evictor_liar.so");
  EXPECT_CONTAINS(message, "is a scheduler plugin ('liar')");
  EXPECT_CONTAINS(message, "an evictor plugin is needed");
}

TEST(PluginRegistry, RefusesAnotherAbiVersionNamingBoth) {
  PluginRegistry registry = fixture_registry();
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "future"); });
  EXPECT_CONTAINS(message, "libloom_evictor_future.so");
  EXPECT_CONTAINS(message, "ABI version " + std::to_string(sdk::kAbiVersion + 1));
  EXPECT_CONTAINS(message, "engine speaks ABI version " + std::to_string(sdk::kAbiVersion));
  EXPECT_CONTAINS(message, "Rebuild");
}

TEST(PluginRegistry, RefusesALibraryWithoutEntryPoint) {
  PluginRegistry registry = fixture_registry();
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "noentry"); });
  EXPECT_CONTAINS(message, "libloom_evictor_noentry.so");
  EXPECT_CONTAINS(message, "is not a Loom plugin");
  EXPECT_CONTAINS(message, "loom_plugin_entry");
}

TEST(PluginRegistry, RefusesAFileThatIsNotASharedLibrary) {
  PluginRegistry registry = fixture_registry();
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "garbage"); });
  EXPECT_CONTAINS(message, "cannot load evictor plugin");
  EXPECT_CONTAINS(message, "libloom_evictor_garbage.so");
}

TEST(PluginRegistry, RefusesAManifestNameThatDiffersFromTheFileName) {
  PluginRegistry registry = fixture_registry();
  std::string message = message_of<PluginError>([&] { registry.load(PluginKind::evictor, "misnamed"); });
  EXPECT_CONTAINS(message, "declares itself as 'other'");
}

TEST(PluginRegistry, FactoryFailuresNameThePluginAndKeepTheReason) {
  PluginRegistry registry = fixture_registry();
  auto throwing = registry.load(PluginKind::evictor, "throwing");
  auto create_with = [&](const std::string& mode) {
    RawSection section;
    section.entries["mode"] = RawEntry{mode, "test.toml:7"};
    throwing->create<sdk::Evictor>(sdk::EngineInfo{}, defaults_of(*throwing, section));
  };
  std::string loom_error = message_of<PluginError>([&] { create_with("loom"); });
  EXPECT_CONTAINS(loom_error, "evictor plugin 'throwing'");
  EXPECT_CONTAINS(loom_error, "libloom_evictor_throwing.so");
  EXPECT_CONTAINS(loom_error, "failed to start: the disk is on fire");

  EXPECT_CONTAINS(message_of<PluginError>([&] { create_with("std"); }), "std failure inside the plugin");
  EXPECT_CONTAINS(message_of<PluginError>([&] { create_with("int"); }), "not a std::exception");

  std::string config_error = message_of<ConfigError>([&] { create_with("config"); });
  EXPECT_CONTAINS(config_error, "test.toml:7: [evictor] mode: this value is refused by the plugin");
  EXPECT_CONTAINS(config_error, "refused by evictor plugin 'throwing'");
}

TEST(PluginRegistry, ScanListsFixturesButShadowsDuplicatesByOrder) {
  PluginRegistry registry = fixture_registry();
  int lru_count = 0, keyed_count = 0;
  for (const auto& candidate : registry.scan()) {
    lru_count += candidate.name == "lru";
    keyed_count += candidate.name == "keyed";
  }
  EXPECT_EQ(lru_count, 1);
  EXPECT_EQ(keyed_count, 1);
}

// ---- plugin keys, validated against the manifest through a whole config ---------------------

Config config_with_evictor(const std::string& evictor_section) {
  RawConfig raw = parse_config_text("[evictor]\n" + evictor_section, "run.toml");
  return load_config_from(std::move(raw), kFixtures);
}

TEST(PluginSetup, ValidatesPluginKeysAndFillsDefaults) {
  PluginRegistry registry = fixture_registry();
  Config config = config_with_evictor("plugin = \"keyed\"\ncapacity = 3\nbudget = \"2KiB\"\nratio = 1\n");
  // Only the evictor is resolved here: the default scheduler etc. are another test's business.
  std::erase_if(config.plugins, [](const PluginChoice& c) { return c.kind != PluginKind::evictor; });
  ResolvedPlugins resolved = resolve_plugins(config, registry);
  const sdk::PluginConfig& values = resolved.find(PluginKind::evictor)->config;
  EXPECT_EQ(values.integer("capacity"), 3);
  EXPECT_EQ(values.integer("budget"), 2048);
  EXPECT_DOUBLE_EQ(values.number("ratio"), 1.0);  // an integer is accepted for a number
  EXPECT_EQ(values.string("label"), "plain");      // default
  EXPECT_EQ(values.origin("capacity"), "run.toml:3");
  EXPECT_EQ(values.origin("label"), "default");
}

TEST(PluginSetup, UnknownPluginKeyNamesFileLineKeyAndAcceptedKeys) {
  PluginRegistry registry = fixture_registry();
  Config config = config_with_evictor("plugin = \"keyed\"\ncapasity = 3\n");
  std::erase_if(config.plugins, [](const PluginChoice& c) { return c.kind != PluginKind::evictor; });
  std::string message = message_of<ConfigError>([&] { resolve_plugins(config, registry); });
  EXPECT_CONTAINS(message, "run.toml:3: [evictor] unknown key 'capasity' for evictor plugin 'keyed'");
  EXPECT_CONTAINS(message, "Did you mean 'capacity'?");
  EXPECT_CONTAINS(message, "Accepted keys: capacity, ratio, verbose, label, budget");
}

TEST(PluginSetup, MistypedPluginKeyNamesExpectedTypeAndExample) {
  PluginRegistry registry = fixture_registry();
  Config config = config_with_evictor("plugin = \"keyed\"\nverbose = \"yes\"\n");
  std::erase_if(config.plugins, [](const PluginChoice& c) { return c.kind != PluginKind::evictor; });
  std::string message = message_of<ConfigError>([&] { resolve_plugins(config, registry); });
  EXPECT_CONTAINS(message, "run.toml:3: [evictor] verbose: expected boolean, got a string (\"yes\")");
  EXPECT_CONTAINS(message, "verbose = false");
}

TEST(PluginSetup, PluginErrorsNameTheConfigLineThatChoseThePlugin) {
  PluginRegistry registry = fixture_registry();
  Config config = config_with_evictor("plugin = \"future\"\n");
  std::erase_if(config.plugins, [](const PluginChoice& c) { return c.kind != PluginKind::evictor; });
  std::string message = message_of<PluginError>([&] { resolve_plugins(config, registry); });
  EXPECT_CONTAINS(message, "run.toml:2: [evictor] plugin = \"future\"");
  EXPECT_CONTAINS(message, "ABI version");
}

TEST(PluginSetup, APluginRefusingAValueNamesWhereTheValueCameFrom) {
  PluginRegistry registry = fixture_registry();
  Config config = config_with_evictor("plugin = \"keyed\"\ncapacity = -4\n");
  std::erase_if(config.plugins, [](const PluginChoice& c) { return c.kind != PluginKind::evictor; });
  ResolvedPlugins resolved = resolve_plugins(config, registry);
  const ResolvedPlugin* evictor = resolved.find(PluginKind::evictor);
  std::string message = message_of<ConfigError>(
      [&] { evictor->library->create<sdk::Evictor>(sdk::EngineInfo{}, evictor->config); });
  EXPECT_CONTAINS(message, "run.toml:3: [evictor] capacity: must not be negative");
}

TEST(PluginRegistry, AnInterfaceMismatchIsRefused) {
  // The single-rank parallel plugin is not an evictor: asking for the wrong interface fails cleanly.
  PluginRegistry registry(PluginRegistry::default_search_path());
  auto single = registry.load(PluginKind::parallel, "single");
  std::string message = message_of<PluginError>(
      [&] { single->create<sdk::Evictor>(sdk::EngineInfo{}, defaults_of(*single)); });
  EXPECT_CONTAINS(message, "parallel plugin 'single'");
  EXPECT_CONTAINS(message, "does not implement the evictor interface");
}

// check_manifest() is pure: these manifests are built here, as a hand-written (not LOOM_PLUGIN)
// manifest might be. Found by the plugin_manifest fuzz target: a key without a name was accepted,
// after which key validation threw std::logic_error (std::string from a null pointer) and
// `loom plugins --describe` broke its output stream.
std::unique_ptr<sdk::Plugin> no_factory_call(const sdk::EngineInfo&, const sdk::PluginConfig&) { return nullptr; }

std::string manifest_error(sdk::PluginManifest manifest) {
  return message_of<PluginError>([&] { check_manifest(&manifest, "lib/libloom_evictor_x.so"); });
}

TEST(PluginManifest, AWellFormedManifestPasses) {
  const sdk::ConfigKeySpec keys[] = {{"capacity", sdk::KeyType::integer, "8", "help"},
                                     {"budget", sdk::KeyType::bytes, "1MiB", nullptr}};
  const sdk::PluginManifest manifest{sdk::kAbiVersion, PluginKind::evictor, "x_2", nullptr, nullptr,
                                     keys, 2, &no_factory_call};
  EXPECT_NO_THROW(check_manifest(&manifest, "lib.so"));
  // What the manifest leaves null reads as "".
  LoadedPlugin plugin(nullptr, &manifest, "lib.so");
  EXPECT_EQ(plugin.version(), "");
  EXPECT_STREQ(plugin.keys()[1].help, "");
  EXPECT_EQ(defaults_of(plugin).integer("budget"), 1 << 20);
}

TEST(PluginManifest, MalformedManifestsAreRefusedNamingTheLibraryAndTheDefect) {
  sdk::ConfigKeySpec keys[] = {{"capacity", sdk::KeyType::integer, "8", "help"},
                               {"ratio", sdk::KeyType::number, "0.5", "help"}};
  const sdk::PluginManifest good{sdk::kAbiVersion, PluginKind::evictor, "x", "1.0", "d", keys, 2, &no_factory_call};
  auto with = [&](auto change) {
    sdk::PluginManifest m = good;
    change(m);
    return manifest_error(m);
  };
  EXPECT_CONTAINS(with([](auto& m) { m.name = ""; }), "'lib/libloom_evictor_x.so': its manifest names the plugin ''");
  EXPECT_CONTAINS(with([](auto& m) { m.name = "My-Plugin"; }), "a name is lower-case letters, digits and '_'");
  EXPECT_CONTAINS(with([](auto& m) { m.kind = static_cast<PluginKind>(99); }), "declares kind 99");
  EXPECT_CONTAINS(with([](auto& m) { m.keys = nullptr; }), "declares 2 config keys but no list of them");
  keys[1].name = nullptr;
  EXPECT_CONTAINS(manifest_error(good), "has a config key without a name (key 2)");
  keys[1].name = "capacity";
  EXPECT_CONTAINS(manifest_error(good), "declares config key 'capacity' twice");
  keys[1].name = "ratio";
  keys[1].type = static_cast<sdk::KeyType>(7);
  EXPECT_CONTAINS(manifest_error(good), "declares config key 'ratio' with type 7");
  keys[1].type = sdk::KeyType::number;
  keys[1].default_value = "half";
  EXPECT_CONTAINS(manifest_error(good), "evictor plugin 'x' declares key 'ratio' with default 'half'");
}

}  // namespace
}  // namespace loom
