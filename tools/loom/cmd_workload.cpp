// `loom workload`: writes a seeded request trace (JSONL with arrival times) for `loom ab` or
// `loom generate`: multi-turn chat, shared system prompts, few-shot templates, or a scan.
#include <fstream>
#include <iostream>

#include "core/workloads/workload.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/file_checks.h"

namespace loom::cli {

int run_workload(std::span<const std::string> args) {
  std::string kind_name, output;
  WorkloadSpec spec;
  po::options_description options("loom workload");
  options.add_options()("kind", po::value(&kind_name)->required(), "chat | system-prompt | few-shot | scan")(
      "output", po::value(&output)->required(), "the JSONL file to write")(
      "requests", po::value(&spec.requests), "requests in the trace (default 200)")(
      "seed", po::value(&spec.seed), "seed (same seed, same trace)")(
      "vocab", po::value(&spec.vocab_size), "token ids are drawn from [3, vocab) (default 32000)")(
      "rate", po::value(&spec.rate), "mean arrivals per second (default 8)")(
      "max-tokens", po::value(&spec.max_tokens), "tokens generated per request (default 32)");
  po::variables_map vm;
  if (!parse_or_help("workload", "loom workload --kind chat|system-prompt|few-shot|scan [--requests N] [--seed S] --output FILE",
                     options, {}, args, vm))
    return 0;
  auto kind = parse_workload_kind(kind_name);
  if (!kind) throw UsageError("--kind " + kind_name + ": expected chat, system-prompt, few-shot or scan");
  spec.kind = *kind;
  // Written beside and renamed when complete: a bad argument never truncates an existing file.
  write_file_atomically(output, "--output", [&](std::ostream& out) { write_workload(spec, out); });
  std::cerr << "wrote " << spec.requests << " " << workload_kind_name(spec.kind) << " requests (seed " << spec.seed
            << ") to " << output << "\n";
  return 0;
}

}  // namespace loom::cli
