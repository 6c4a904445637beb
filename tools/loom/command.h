// A `loom` subcommand: its name, one-line summary and entry point.
#pragma once

#include <span>
#include <string>

namespace loom::cli {

struct Command {
  const char* name;
  const char* summary;
  // Runs with the arguments after the subcommand's name; returns the exit code or throws
  // loom::Error (the caller maps it to an exit code).
  int (*run)(std::span<const std::string> args);
};

int run_plugins(std::span<const std::string> args);
int run_config(std::span<const std::string> args);
int run_mkmodel(std::span<const std::string> args);
int run_inspect(std::span<const std::string> args);
int run_generate(std::span<const std::string> args);
int run_bench(std::span<const std::string> args);
int run_ab(std::span<const std::string> args);
int run_workload(std::span<const std::string> args);
int run_serve(std::span<const std::string> args);

}  // namespace loom::cli
