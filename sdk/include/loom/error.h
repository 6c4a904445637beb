// The one error hierarchy of Loom, shared by the engine and plugins.
//
// Every error says what failed, where (file, line, key, tensor, plugin) and, when there is one,
// the fix. The command line maps each class to an exit code: 2 for a mistake the user can
// correct in what they gave (usage, config, plugin choice, model files), 1 for a failure at run
// time. Plugins throw these types (documented per interface method) and nothing else.
#pragma once

#include <stdexcept>
#include <string>

#include "loom/export.h"

namespace loom {

class LOOM_SDK_VISIBLE Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // Process exit code the command line uses when this error ends a run.
  virtual int exit_code() const noexcept { return 1; }
};

// The command line was used wrongly (unknown flag, missing argument).
class LOOM_SDK_VISIBLE UsageError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

// A config file or override is malformed or names an unknown or mistyped key.
class LOOM_SDK_VISIBLE ConfigError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

// A plugin cannot be found, loaded, checked or constructed.
class LOOM_SDK_VISIBLE PluginError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

// A model file or directory is missing, truncated, or does not describe a supported model.
class LOOM_SDK_VISIBLE ModelError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

// An input request cannot be served (bad prompt, too long, invalid parameters); it fails alone.
class LOOM_SDK_VISIBLE RequestError : public Error {
 public:
  using Error::Error;
};

// A device (CUDA, cuBLAS, NCCL) call failed or memory ran out.
class LOOM_SDK_VISIBLE DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace loom
