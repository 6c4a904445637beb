// `loom workload`: writes a seeded request trace (JSONL with arrival times) for `loom ab` or
// `loom generate`: multi-turn chat, shared system prompts, few-shot templates, a scan, or long
// conversations that come back (multi-turn).
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>

#include "core/io/model_loader.h"
#include "core/workloads/workload.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/file_checks.h"
#include "tools/loom/random_requests.h"

namespace loom::cli {

int run_workload(std::span<const std::string> args) {
  std::string kind_name, output, model;
  WorkloadSpec spec;
  std::int64_t requests = static_cast<std::int64_t>(spec.requests);
  std::string question_tokens;
  po::options_description options("loom workload");
  options.add_options()("kind", po::value(&kind_name)->required(), "chat | system-prompt | few-shot | scan | multi-turn")(
      "output", po::value(&output)->required(), "the JSONL file to write")(
      "requests", po::value(&requests), "requests in the trace (default 200, at most 1000000)")(
      "seed", po::value(&spec.seed), "seed (same seed, same trace)")(
      "vocab", po::value(&spec.vocab_size), "token ids are drawn from [3, vocab) (default 32000)")(
      "model", po::value(&model),
      "fit the trace to this model (a Hugging Face folder or a .bin): its vocabulary, and scans within its context")(
      "rate", po::value(&spec.rate), "mean arrivals per second (default 8)")(
      "max-tokens", po::value(&spec.max_tokens), "tokens generated per request (default 32)")(
      "system-prompts", po::value(&spec.system_prompt.count), "system-prompt: how many distinct ones (default 4)")(
      "system-tokens", po::value(&spec.system_prompt.tokens), "system-prompt: tokens of each (default 256)")(
      "question-tokens", po::value(&question_tokens), "system-prompt: tokens of each question, N or MIN:MAX (default 16:64)");
  po::variables_map vm;
  if (!parse_or_help("workload", "loom workload --kind chat|system-prompt|few-shot|scan|multi-turn [--requests N] [--seed S] [--vocab N | --model PATH] "
                     "--output FILE",
                     options, {}, args, vm))
    return 0;
  spec.requests = workload_request_count(requests);
  auto kind = parse_workload_kind(kind_name);
  if (!kind) throw UsageError("--kind " + kind_name + ": expected chat, system-prompt, few-shot, scan or multi-turn");
  spec.kind = *kind;
  for (const char* key : {"system-prompts", "system-tokens", "question-tokens"})
    if (vm.count(key) && spec.kind != WorkloadKind::system_prompt)
      throw UsageError(std::string("--") + key + " shapes --kind system-prompt, not " + kind_name);
  if (vm.count("system-prompts") && spec.system_prompt.count < 1)
    throw UsageError("--system-prompts " + std::to_string(spec.system_prompt.count) + ": need at least 1");
  if (vm.count("system-tokens") && spec.system_prompt.tokens < 1)
    throw UsageError("--system-tokens " + std::to_string(spec.system_prompt.tokens) + ": need at least 1");
  if (!question_tokens.empty()) {
    const Range range = parse_range(question_tokens, "--question-tokens");
    spec.system_prompt.question_tokens_min = range.min;
    spec.system_prompt.question_tokens_max = range.max;
  }
  if (!model.empty()) {
    if (vm.count("vocab")) throw UsageError("give --vocab or --model, not both");
    const io::ModelConfig config = io::load_model_config(model);
    spec.vocab_size = static_cast<std::int32_t>(config.vocab_size);
    fit_to_context(spec, config.context_length());  // scans and histories with their output
  }
  // Written beside and renamed when complete: a bad argument never truncates an existing file.
  write_file_atomically(output, "--output", [&](std::ostream& out) { write_workload(spec, out); });
  std::cerr << "wrote " << spec.requests << " " << workload_kind_name(spec.kind) << " requests (seed " << spec.seed
            << ") to " << output << "\n";
  return 0;
}

}  // namespace loom::cli
