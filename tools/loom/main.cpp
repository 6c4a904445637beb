// `loom`: the command line. Dispatches to a subcommand and maps errors to exit codes:
// 0 ok, 1 runtime failure, 2 usage or config error; generate and bench return 3 when requests failed.
#include <iostream>
#include <string>
#include <vector>

#include "loom/error.h"
#include "loom/plugin.h"
#include "tools/loom/command.h"

namespace {

using loom::cli::Command;

const Command kCommands[] = {
    {"generate", "generate for every request of a text or JSONL file; JSONL results", loom::cli::run_generate},
    {"serve", "an OpenAI-compatible HTTP server: completions, chat, streaming, metrics", loom::cli::run_serve},
    {"plugins", "list the plugins found, or describe one (--describe NAME)", loom::cli::run_plugins},
    {"ab", "one workload under two or more configs: hit rate, TTFT, report and plot", loom::cli::run_ab},
    {"bench", "offline throughput on random prompts: tokens/s, TTFT/TPOT, bandwidth", loom::cli::run_bench},
    {"config", "check a config and print it fully resolved (--explain FILE)", loom::cli::run_config},
    {"inspect", "load a model (and its tokenizer) and print what it is", loom::cli::run_inspect},
    {"workload", "write a seeded request trace: chat, system-prompt, few-shot, scan", loom::cli::run_workload},
    {"mkmodel", "write a random-weight model of any supported shape (tests, benchmarks)", loom::cli::run_mkmodel},
};

void print_usage(std::ostream& out) {
  out << "loom: an LLM inference engine whose policies are plugins\n\n"
         "usage: loom <command> [options]     (loom <command> --help for its options)\n\ncommands:\n";
  for (const Command& command : kCommands) {
    std::string name = command.name;
    name.resize(10, ' ');
    out << "  " << name << command.summary << "\n";
  }
  out << "\nexit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 requests failed (generate, bench;\n"
         "their results are written; --accept-failures exits 0)\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "loom " << LOOM_VERSION << " (plugin ABI " << loom::sdk::kAbiVersion << ")\n";
    return 0;
  }
  for (const Command& command : kCommands) {
    if (args[0] != command.name) continue;
    try {
      return command.run(std::span<const std::string>(args).subspan(1));
    } catch (const loom::Error& e) {
      std::cerr << "loom " << command.name << ": error: " << e.what() << "\n";
      return e.exit_code();
    } catch (const std::exception& e) {
      std::cerr << "loom " << command.name << ": internal error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "loom: unknown command '" << args[0] << "'\n\n";
  print_usage(std::cerr);
  return 2;
}
