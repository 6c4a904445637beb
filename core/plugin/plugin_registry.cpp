#include "core/plugin/plugin_registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "core/common/suggest.h"
#include "core/config/key_validation.h"

namespace loom {

namespace fs = std::filesystem;

namespace {

std::string searched(const std::vector<fs::path>& dirs) {
  std::string out;
  for (const auto& dir : dirs) {
    if (!out.empty()) out += ", ";
    out += dir.string();
  }
  return out.empty() ? "(no folders)" : out;
}

// "an evictor plugin", "a scheduler plugin".
std::string a_kind(sdk::PluginKind kind) {
  std::string name = sdk::plugin_kind_name(kind);
  return (std::string("aeiou").find(name[0]) != std::string::npos ? "an " : "a ") + name;
}

bool looks_like_path(std::string_view value) {
  return value.find('/') != std::string_view::npos ||
         (value.size() > 3 && value.substr(value.size() - 3) == ".so");
}

// Why `path` cannot be loaded, in the loader's words: boost::dll keeps only an errno-like code
// ("Bad file descriptor" for a text file), so a file without an ELF header is named as such and
// any other failure is asked of dlopen again for dlerror()'s reason.
std::string load_failure_reason(const fs::path& path, const std::string& fallback) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, sizeof magic);
  if (in.gcount() < 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F')
    return "not a shared library (it does not start with an ELF header)";
  std::string reason = fallback;
  if (void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) ::dlclose(handle);
  else if (const char* said = ::dlerror()) reason = said;
  return reason + ". Is it a shared library built for this machine, with all its dependencies found?";
}

}  // namespace

std::string plugin_file_name(sdk::PluginKind kind, std::string_view name) {
  return "libloom_" + std::string(sdk::plugin_kind_name(kind)) + "_" + std::string(name) + ".so";
}

bool parse_plugin_kind(std::string_view text, sdk::PluginKind& kind) {
  for (sdk::PluginKind k : sdk::kAllPluginKinds) {
    if (text == sdk::plugin_kind_name(k)) {
      kind = k;
      return true;
    }
  }
  return false;
}

void check_manifest(const sdk::PluginManifest* manifest, const fs::path& path) {
  if (!manifest) throw PluginError("'" + path.string() + "': its entry point returned no manifest");
  // Nothing but abi_version may be read before this check: the rest of the layout may differ.
  if (manifest->abi_version != sdk::kAbiVersion) {
    throw PluginError("'" + path.string() + "' was built for Loom plugin ABI version " +
                      std::to_string(manifest->abi_version) + ", but this engine speaks ABI version " +
                      std::to_string(sdk::kAbiVersion) +
                      ". Rebuild the plugin against this Loom's SDK (find_package(Loom)).");
  }
  if (!manifest->name || !manifest->create) {
    throw PluginError("'" + path.string() + "': its manifest has no name or no factory");
  }

  // A manifest written by hand rather than by LOOM_PLUGIN may be malformed in ways that would
  // crash or confuse whoever reads it later (the registry, key validation, `loom plugins`).
  auto refuse = [&](const std::string& what) {
    throw PluginError("'" + path.string() + "': its manifest " + what +
                      ". Declare the plugin with LOOM_PLUGIN(...) from <loom/plugin.h> and rebuild it.");
  };
  const std::string_view name = manifest->name;
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      }))
    refuse("names the plugin '" + std::string(name) + "'; a name is lower-case letters, digits and '_'");
  if (std::find(std::begin(sdk::kAllPluginKinds), std::end(sdk::kAllPluginKinds), manifest->kind) ==
      std::end(sdk::kAllPluginKinds))
    refuse("declares kind " + std::to_string(static_cast<std::uint32_t>(manifest->kind)) +
           ", which this engine does not know");
  if (manifest->num_keys > 0 && !manifest->keys)
    refuse("declares " + std::to_string(manifest->num_keys) + " config keys but no list of them");
  const std::string owner = std::string(sdk::plugin_kind_name(manifest->kind)) + " plugin '" + std::string(name) + "'";
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < manifest->num_keys; ++i) {
    const sdk::ConfigKeySpec& key = manifest->keys[i];
    if (!key.name || !*key.name) refuse("has a config key without a name (key " + std::to_string(i + 1) + ")");
    if (!seen.insert(key.name).second) refuse("declares config key '" + std::string(key.name) + "' twice");
    if (static_cast<std::uint32_t>(key.type) > static_cast<std::uint32_t>(sdk::KeyType::bytes))
      refuse("declares config key '" + std::string(key.name) + "' with type " +
             std::to_string(static_cast<std::uint32_t>(key.type)) + ", which this engine does not know");
    try {
      parse_default(key, owner);
    } catch (const ConfigError& e) {
      throw PluginError("'" + path.string() + "': " + e.what());
    }
  }
}

// ---- LoadedPlugin ---------------------------------------------------------------------------

LoadedPlugin::LoadedPlugin(std::shared_ptr<const void> library, const sdk::PluginManifest* manifest,
                           fs::path path)
    : library_(std::move(library)),
      manifest_(manifest),
      path_(std::move(path)),
      name_(manifest->name ? manifest->name : ""),
      version_(manifest->version ? manifest->version : ""),
      description_(manifest->description ? manifest->description : "") {
  for (std::size_t i = 0; i < manifest->num_keys; ++i) {
    sdk::ConfigKeySpec key = manifest->keys[i];
    if (!key.default_value) key.default_value = "";
    if (!key.help) key.help = "";
    keys_.push_back(key);
  }
}

std::string LoadedPlugin::label() const {
  return std::string(sdk::plugin_kind_name(kind())) + " plugin '" + name_ + "' (" + path_.string() + ")";
}

sdk::Plugin* LoadedPlugin::create_object(const sdk::EngineInfo& info, const sdk::PluginConfig& config) const {
  std::unique_ptr<sdk::Plugin> object;
  try {
    object = manifest_->create(info, config);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " (refused by " + label() + ")");
  } catch (const std::exception& e) {
    throw PluginError(label() + " failed to start: " + e.what());
  } catch (...) {
    throw PluginError(label() + " failed to start: it threw something that is not a std::exception; "
                      "plugins must throw loom::Error");
  }
  if (!object) throw PluginError(label() + " failed to start: its factory returned no object");
  return object.release();
}

void LoadedPlugin::throw_wrong_interface(sdk::PluginKind wanted) const {
  throw PluginError(label() + " does not implement the " + sdk::plugin_kind_name(wanted) +
                    " interface (its manifest says " + sdk::plugin_kind_name(kind()) +
                    " and its object must derive from that kind's interface; declare it with LOOM_PLUGIN)");
}

// ---- PluginRegistry -------------------------------------------------------------------------

PluginRegistry::PluginRegistry(std::vector<fs::path> search_path) : search_path_(std::move(search_path)) {}

std::vector<fs::path> PluginRegistry::default_search_path(std::span<const fs::path> cli_dirs) {
  std::vector<fs::path> dirs(cli_dirs.begin(), cli_dirs.end());
  if (const char* env = std::getenv("LOOM_PLUGIN_PATH")) {
    std::stringstream list(env);
    for (std::string dir; std::getline(list, dir, ':');)
      if (!dir.empty()) dirs.emplace_back(dir);
  }
  // Beside the running binary: the build tree has bin/ next to lib/loom/plugins/, an install
  // prefix bin/ next to its plugin folder (lib/loom/plugins, or the platform's libdir), wherever
  // the prefix is — never a folder fixed at build time.
  if (const fs::path prefix = installation_prefix(); !prefix.empty()) {
    dirs.push_back((prefix / "lib/loom/plugins").lexically_normal());
#ifdef LOOM_PLUGIN_INSTALL_DIR
    dirs.push_back((prefix / LOOM_PLUGIN_INSTALL_DIR).lexically_normal());
#endif
  }
  std::vector<fs::path> unique;
  for (auto& dir : dirs)
    if (std::find(unique.begin(), unique.end(), dir) == unique.end()) unique.push_back(dir);
  return unique;
}

fs::path installation_prefix() {
  boost::system::error_code ec;
  const fs::path exe = boost::dll::program_location(ec).string();
  return ec ? fs::path() : exe.parent_path().parent_path();
}

std::optional<PluginFileName> parse_plugin_file_name(const fs::path& path) {
  const std::string file = path.filename().string();
  if (!file.starts_with("libloom_") || !file.ends_with(".so")) return std::nullopt;
  const std::string stem = file.substr(8, file.size() - 8 - 3);
  for (sdk::PluginKind kind : sdk::kAllPluginKinds) {
    const std::string prefix = std::string(sdk::plugin_kind_name(kind)) + "_";
    if (stem.starts_with(prefix) && stem.size() > prefix.size()) return PluginFileName{kind, stem.substr(prefix.size())};
  }
  return std::nullopt;
}

std::vector<PluginRegistry::Candidate> PluginRegistry::scan() const {
  std::vector<Candidate> found;
  std::set<std::string> seen_files;
  for (const auto& dir : search_path_) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string file = entry.path().filename().string();
      if (seen_files.count(file)) continue;
      if (auto parsed = parse_plugin_file_name(entry.path())) {
        found.push_back({parsed->kind, std::move(parsed->name), entry.path()});
        seen_files.insert(file);
      }
    }
  }
  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.name < b.name;
  });
  return found;
}

std::vector<std::string> PluginRegistry::available(sdk::PluginKind kind) const {
  std::vector<std::string> names;
  for (const auto& candidate : scan())
    if (candidate.kind == kind) names.push_back(candidate.name);
  return names;
}

std::shared_ptr<const LoadedPlugin> PluginRegistry::load(sdk::PluginKind kind, std::string_view name_or_path,
                                                         const fs::path& base_dir) {
  const std::string kind_name = sdk::plugin_kind_name(kind);
  if (looks_like_path(name_or_path)) {
    fs::path path(name_or_path);
    if (path.is_relative()) path = (base_dir / path).lexically_normal();
    if (!fs::exists(path)) {
      throw PluginError(kind_name + " plugin file '" + path.string() + "' does not exist (plugin = \"" +
                        std::string(name_or_path) + "\"; relative paths start from the config file's folder)");
    }
    return load_checked(path, &kind, "");
  }
  const std::string file = plugin_file_name(kind, name_or_path);
  for (const auto& dir : search_path_) {
    fs::path path = dir / file;
    if (fs::exists(path)) return load_checked(path, &kind, name_or_path);
  }
  std::vector<std::string> names = available(kind);
  throw PluginError(kind_name + " plugin '" + std::string(name_or_path) + "' not found: no " + file + " in " +
                    searched(search_path_) + "." + did_you_mean(name_or_path, names) + " Available " +
                    kind_name + " plugins: " + join_names(names) +
                    ". To use your own, give its path (plugin = \"path/to/lib.so\"), --plugin-dir DIR or LOOM_PLUGIN_PATH.");
}

std::shared_ptr<const LoadedPlugin> PluginRegistry::load_file(const fs::path& path) {
  if (!fs::exists(path)) throw PluginError("plugin file '" + path.string() + "' does not exist");
  return load_checked(path, nullptr, "");
}

std::shared_ptr<const LoadedPlugin> PluginRegistry::load_checked(const fs::path& given_path,
                                                                 const sdk::PluginKind* expected_kind,
                                                                 std::string_view requested_name) {
  std::error_code fs_ec;
  fs::path path = fs::canonical(given_path, fs_ec);
  if (fs_ec) path = given_path;
  const std::string what = expected_kind ? std::string(sdk::plugin_kind_name(*expected_kind)) + " plugin" : "plugin";

  std::shared_ptr<const LoadedPlugin> plugin;
  if (auto it = loaded_.find(path); it != loaded_.end()) {
    plugin = it->second;
  } else {
    auto library = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    library->load(path.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
      throw PluginError("cannot load " + what + " '" + path.string() + "': " + load_failure_reason(path, ec.message()));
    }
    if (!library->has(sdk::kEntrySymbol)) {
      throw PluginError("'" + path.string() + "' is not a Loom plugin: it exports no '" + sdk::kEntrySymbol +
                        "' symbol. Declare the plugin with LOOM_PLUGIN(...) from <loom/plugin.h> and build it "
                        "with loom_add_plugin().");
    }
    auto entry = library->get_alias<const sdk::PluginManifest*()>(sdk::kEntrySymbol);
    const sdk::PluginManifest* manifest = entry();
    check_manifest(manifest, path);
    plugin = std::make_shared<LoadedPlugin>(std::shared_ptr<const void>(library), manifest, path);
    loaded_.emplace(path, plugin);
  }

  if (expected_kind && plugin->kind() != *expected_kind) {
    throw PluginError("'" + path.string() + "' is " + a_kind(plugin->kind()) + " plugin ('" +
                      plugin->name() + "'), but " + a_kind(*expected_kind) +
                      " plugin is needed here. Available " + sdk::plugin_kind_name(*expected_kind) + " plugins: " +
                      join_names(available(*expected_kind)) + ".");
  }
  if (!requested_name.empty() && plugin->name() != requested_name) {
    throw PluginError("'" + path.string() + "' declares itself as '" + plugin->name() + "', not '" +
                      std::string(requested_name) + "': rename the file to " +
                      plugin_file_name(plugin->kind(), plugin->name()) + " or fix its LOOM_PLUGIN name");
  }
  return plugin;
}

}  // namespace loom
