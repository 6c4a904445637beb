// The plugin ABI: what a plugin .so exports and how the engine checks it before trusting it.
//
// A plugin library exports exactly one symbol, `loom_plugin_entry` (a Boost.DLL alias), which
// returns a pointer to its PluginManifest. The engine reads `abi_version` first — it is the first
// member and its type never changes — and refuses the library unless it equals kAbiVersion;
// only then does it read the rest and call `create`. Everything after abi_version may change
// when kAbiVersion changes.
//
// C++ types cross this boundary (the interfaces, std::string, exceptions), so a plugin must be
// built with the same compiler family and standard library as the engine; the ABI version
// guards the layout of Loom's own types, not the toolchain's. See docs/plugin-guide.md.
//
// A plugin author writes only this:
//
//   class FifoEvictor final : public loom::sdk::Evictor { ... ctor(const EngineInfo&, const PluginConfig&) };
//   const loom::sdk::ConfigKeySpec kKeys[] = {{"capacity", KeyType::integer, "0", "..."}};
//   LOOM_PLUGIN(evictor, "fifo", "1.0.0", "First in, first out", FifoEvictor, kKeys)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include <boost/dll/alias.hpp>

#include "loom/engine_info.h"
#include "loom/export.h"
#include "loom/plugin_config.h"

namespace loom::sdk {

// Bumped whenever the manifest layout or any interface in this SDK changes incompatibly.
inline constexpr std::uint32_t kAbiVersion = 6;

// The symbol every plugin exports; the registry looks it up by this name.
inline constexpr const char* kEntrySymbol = "loom_plugin_entry";

enum class PluginKind : std::uint32_t {
  scheduler = 1,
  kv_allocator = 2,
  evictor = 3,
  attention = 4,
  parallel = 5,
  kv_connector = 6,
  drafter = 7,
};

inline constexpr PluginKind kAllPluginKinds[] = {
    PluginKind::scheduler, PluginKind::kv_allocator, PluginKind::evictor,     PluginKind::attention,
    PluginKind::parallel,  PluginKind::kv_connector, PluginKind::drafter};

// The kind's name as it appears in configs ([evictor]) and on the command line.
inline const char* plugin_kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::scheduler: return "scheduler";
    case PluginKind::kv_allocator: return "kv_allocator";
    case PluginKind::evictor: return "evictor";
    case PluginKind::attention: return "attention";
    case PluginKind::parallel: return "parallel";
    case PluginKind::kv_connector: return "kv_connector";
    case PluginKind::drafter: return "drafter";
  }
  return "unknown";
}

// Base of every plugin object. The engine owns plugin objects through a deleter that also
// keeps the plugin's library loaded until the object is gone.
class LOOM_SDK_VISIBLE Plugin {
 public:
  virtual ~Plugin() = default;
};

// One config key a plugin accepts. `default_value` is written as it would be in TOML
// ("16", "0.5", "true", "\"text\"" or a bare string for string keys, "64MiB" for bytes).
struct ConfigKeySpec {
  const char* name;
  KeyType type;
  const char* default_value;
  const char* help;
};

// Constructs the plugin. May throw loom::ConfigError for a value it cannot accept (use
// PluginConfig::invalid) and loom::Error for other failures; the registry adds the plugin's
// name and path to the message. Must return a non-null object of the manifest's kind.
using PluginFactory = std::unique_ptr<Plugin> (*)(const EngineInfo& info, const PluginConfig& config);

struct PluginManifest {
  std::uint32_t abi_version;  // must stay the first member
  PluginKind kind;
  const char* name;           // [a-z0-9_]+, unique within the kind
  const char* version;        // the plugin's own version, e.g. "1.2.0"
  const char* description;    // one line
  const ConfigKeySpec* keys;
  std::size_t num_keys;
  PluginFactory create;
};

using PluginEntry = const PluginManifest* (*)();

// Maps a kind to its interface class; each interface header specializes it.
template <PluginKind kind>
struct InterfaceOf;

inline constexpr std::span<const ConfigKeySpec> kNoKeys{};

}  // namespace loom::sdk

// Declares the plugin of this library. KIND is a bare kind name (evictor, scheduler, ...);
// CLASS derives from that kind's interface and has a constructor
// CLASS(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig&); KEYS is an array of
// ConfigKeySpec or loom::sdk::kNoKeys. Use once per library, at namespace scope.
#define LOOM_PLUGIN(KIND, NAME, VERSION, DESCRIPTION, CLASS, KEYS)                                 \
  static_assert(std::is_base_of_v<                                                                \
                    ::loom::sdk::InterfaceOf<::loom::sdk::PluginKind::KIND>::type, CLASS>,        \
                #CLASS " must derive from the " #KIND " interface");                            \
  namespace {                                                                                     \
  std::unique_ptr<::loom::sdk::Plugin> loom_plugin_create(const ::loom::sdk::EngineInfo& info,    \
                                                          const ::loom::sdk::PluginConfig& cfg) { \
    return std::make_unique<CLASS>(info, cfg);                                                    \
  }                                                                                               \
  const ::loom::sdk::PluginManifest* loom_plugin_manifest() {                                     \
    static const std::span<const ::loom::sdk::ConfigKeySpec> keys{KEYS};                         \
    static const ::loom::sdk::PluginManifest manifest{                                            \
        ::loom::sdk::kAbiVersion, ::loom::sdk::PluginKind::KIND, NAME, VERSION, DESCRIPTION,      \
        keys.data(), keys.size(), &loom_plugin_create};                                           \
    return &manifest;                                                                             \
  }                                                                                               \
  }                                                                                               \
  BOOST_DLL_ALIAS(loom_plugin_manifest, loom_plugin_entry)
