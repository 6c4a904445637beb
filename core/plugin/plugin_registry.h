// Finds, loads and checks plugin libraries, and constructs plugin objects from them.
//
// Resolution: `plugin = "lru"` in section [evictor] looks for libloom_evictor_lru.so in each
// folder of the search path, in order (the first one found wins, like PATH):
//   1. folders given on the command line (--plugin-dir),
//   2. LOOM_PLUGIN_PATH (colon-separated),
//   3. the build tree's plugin folder, when this binary runs from a build tree,
//   4. <install prefix>/lib/loom/plugins.
// A value with a '/' or ending in ".so" is a path to one library (relative to the config file).
//
// Every library is checked before anything in it is trusted: it must load, export
// `loom_plugin_entry`, speak this engine's ABI version and be of the expected kind. Each
// refusal is a PluginError that names the plugin, the file(s) and the fix.
//
// Lifetime: objects made by a plugin are owned through PluginPtr, whose deleter keeps the
// library loaded until the object is destroyed; the registry may be destroyed first.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loom/error.h"
#include "loom/plugin.h"

namespace loom {

// Deletes a plugin object, then lets go of the library that holds its code.
struct PluginDeleter {
  std::shared_ptr<const void> library;
  void operator()(sdk::Plugin* object) const noexcept { delete object; }
};

template <typename Interface>
using PluginPtr = std::unique_ptr<Interface, PluginDeleter>;

// A loaded and checked plugin library.
class LoadedPlugin {
 public:
  LoadedPlugin(std::shared_ptr<const void> library, const sdk::PluginManifest* manifest,
               std::filesystem::path path);

  sdk::PluginKind kind() const { return manifest_->kind; }
  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::string& description() const { return description_; }
  const std::filesystem::path& path() const { return path_; }
  // The keys the plugin accepts; valid while this object lives. A default or help text the
  // manifest leaves null reads as "".
  std::span<const sdk::ConfigKeySpec> keys() const { return keys_; }
  // "evictor plugin 'lru' (/path/libloom_evictor_lru.so)", for messages.
  std::string label() const;

  // Constructs the plugin object. `config` must have been validated against keys().
  // Throws ConfigError (a value the plugin refused) or PluginError, both naming the plugin.
  template <typename Interface>
  PluginPtr<Interface> create(const sdk::EngineInfo& info, const sdk::PluginConfig& config) const {
    if (kind() != Interface::kKind) throw_wrong_interface(Interface::kKind);
    sdk::Plugin* object = create_object(info, config);
    auto* typed = dynamic_cast<Interface*>(object);
    if (!typed) {
      PluginDeleter{library_}(object);
      throw_wrong_interface(Interface::kKind);
    }
    return PluginPtr<Interface>(typed, PluginDeleter{library_});
  }

 private:
  sdk::Plugin* create_object(const sdk::EngineInfo& info, const sdk::PluginConfig& config) const;
  [[noreturn]] void throw_wrong_interface(sdk::PluginKind wanted) const;

  std::shared_ptr<const void> library_;
  const sdk::PluginManifest* manifest_;
  std::filesystem::path path_;
  std::string name_, version_, description_;
  std::vector<sdk::ConfigKeySpec> keys_;
};

class PluginRegistry {
 public:
  explicit PluginRegistry(std::vector<std::filesystem::path> search_path);

  // The standard search path (see above), with `cli_dirs` first. Folders that do not exist are
  // kept: messages list what was searched.
  static std::vector<std::filesystem::path> default_search_path(
      std::span<const std::filesystem::path> cli_dirs = {});

  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }

  // Resolves a plugin by name or path for `kind`, loads and checks it. Loading the same file
  // twice returns the same library. Throws PluginError.
  std::shared_ptr<const LoadedPlugin> load(sdk::PluginKind kind, std::string_view name_or_path,
                                           const std::filesystem::path& base_dir = ".");

  // Loads and checks one library of any kind. Throws PluginError.
  std::shared_ptr<const LoadedPlugin> load_file(const std::filesystem::path& path);

  // A plugin library found by its file name (libloom_<kind>_<name>.so), not yet loaded.
  struct Candidate {
    sdk::PluginKind kind;
    std::string name;
    std::filesystem::path path;
  };
  // Every plugin file in the search path, shadowed ones left out, sorted by kind and name.
  std::vector<Candidate> scan() const;
  // Names of the plugins of `kind` found by scan().
  std::vector<std::string> available(sdk::PluginKind kind) const;

 private:
  std::shared_ptr<const LoadedPlugin> load_checked(const std::filesystem::path& path,
                                                   const sdk::PluginKind* expected_kind,
                                                   std::string_view requested_name);

  std::vector<std::filesystem::path> search_path_;
  std::map<std::filesystem::path, std::shared_ptr<const LoadedPlugin>> loaded_;
};

// Checks the manifest a library's entry point returned, before anything else in it is used:
// present, this engine's ABI version (read first, as nothing else may be read before it
// matches), a factory, a name of [a-z0-9_]+, a kind this engine knows, and a list of keys each
// with a name (no two alike), a known type and a default that parses as that type. Version,
// description, defaults and help may be null. `path` names the library in messages. Throws
// PluginError.
void check_manifest(const sdk::PluginManifest* manifest, const std::filesystem::path& path);

// "libloom_evictor_lru.so" for (evictor, lru).
std::string plugin_file_name(sdk::PluginKind kind, std::string_view name);

// Parses "evictor" into a kind; false when it is not a kind name.
bool parse_plugin_kind(std::string_view text, sdk::PluginKind& kind);

// The folder above the running binary's bin/: the build tree, or the install prefix wherever it
// is (plugins in lib/loom/plugins, configs in share/loom/configs). Empty when unknown.
std::filesystem::path installation_prefix();

// The kind and name a plugin file's name declares, "libloom_<kind>_<name>.so" (any folder);
// nullopt for any other file name.
struct PluginFileName {
  sdk::PluginKind kind;
  std::string name;
};
std::optional<PluginFileName> parse_plugin_file_name(const std::filesystem::path& file);

}  // namespace loom
