// Loads the real plugin a faulty plugin wraps, through nothing but the SDK's entry point, the
// way the engine's registry does: dlopen, `loom_plugin_entry`, ABI version and kind checked,
// the plugin's own keys at their declared defaults, then its factory.
#pragma once

#include <dlfcn.h>

#include <memory>
#include <string>

#include "loom/error.h"
#include "loom/plugin.h"

namespace loom::faults {

template <typename Interface>
class InnerPlugin {
 public:
  explicit InnerPlugin(const std::string& path, const sdk::EngineInfo& info) {
    if (path.empty()) throw ConfigError("a faulty plugin needs `inner`: the path of the real plugin's .so");
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) throw PluginError("faulty plugin: cannot load inner plugin '" + path + "': " + dlerror());
    void* symbol = dlsym(handle_, sdk::kEntrySymbol);
    if (!symbol) fail(path + " is not a Loom plugin");
    // A Boost.DLL alias is a variable holding the function's address.
    const sdk::PluginManifest* manifest = (*reinterpret_cast<sdk::PluginEntry*>(symbol))();
    if (!manifest || manifest->abi_version != sdk::kAbiVersion || manifest->kind != Interface::kKind)
      fail(path + " is not a " + sdk::plugin_kind_name(Interface::kKind) + " plugin of this ABI version");
    sdk::PluginConfig config(sdk::plugin_kind_name(Interface::kKind));
    for (std::size_t i = 0; i < manifest->num_keys; ++i) {
      const sdk::ConfigKeySpec& key = manifest->keys[i];
      const std::string text = key.default_value;
      switch (key.type) {
        case sdk::KeyType::integer:
        case sdk::KeyType::bytes: config.set(key.name, std::int64_t{std::stoll(text)}, "default"); break;
        case sdk::KeyType::number: config.set(key.name, std::stod(text), "default"); break;
        case sdk::KeyType::boolean: config.set(key.name, text == "true", "default"); break;
        case sdk::KeyType::string: config.set(key.name, text, "default"); break;
      }
    }
    std::unique_ptr<sdk::Plugin> object;
    try {
      object = manifest->create(info, config);
    } catch (...) {
      dlclose(handle_);
      throw;
    }
    auto* typed = dynamic_cast<Interface*>(object.get());
    if (!typed) {
      object.reset();
      fail(path + " made an object of the wrong interface");
    }
    object.release();
    object_.reset(typed);
  }

  ~InnerPlugin() {
    object_.reset();  // its code lives in the library: destroy it first
    if (handle_) dlclose(handle_);
  }

  InnerPlugin(const InnerPlugin&) = delete;
  InnerPlugin& operator=(const InnerPlugin&) = delete;

  Interface& operator*() const { return *object_; }
  Interface* operator->() const { return object_.get(); }

 private:
  [[noreturn]] void fail(const std::string& why) {
    dlclose(handle_);
    handle_ = nullptr;
    throw PluginError("faulty plugin: " + why);
  }

  void* handle_ = nullptr;
  std::unique_ptr<Interface> object_;
};

}  // namespace loom::faults
