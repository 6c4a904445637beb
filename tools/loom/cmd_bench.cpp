// `loom bench`: offline throughput in the manner of nano-vLLM's bench.py. N prompts of random
// token ids with input and output lengths drawn from ranges, ignore-eos, everything submitted at
// once; a warm-up run is excluded. Prints output and total tokens/s, TTFT/TPOT percentiles, KV
// usage, and the weight bandwidth achieved (weight bytes read per step over time); --json for
// machines.
#include <chrono>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/run_summary.h"

namespace loom::cli {

namespace {

struct Range {
  int min = 0, max = 0;
};

// "128" or "100:1024".
Range parse_range(const std::string& text, const char* option) {
  Range r;
  try {
    auto colon = text.find(':');
    r.min = std::stoi(text.substr(0, colon));
    r.max = colon == std::string::npos ? r.min : std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    throw UsageError(std::string(option) + " " + text + ": expected N or MIN:MAX");
  }
  if (r.min < 1 || r.max < r.min) throw UsageError(std::string(option) + " " + text + ": need 1 <= MIN <= MAX");
  return r;
}

std::vector<Request> random_requests(int count, Range input, Range output, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Request> requests;
  for (int i = 0; i < count; ++i) {
    Request r;
    r.id = "bench-" + std::to_string(i);
    const int in = std::uniform_int_distribution<int>(input.min, input.max)(rng);
    for (int t = 0; t < in; ++t) r.prompt_token_ids.push_back(std::uniform_int_distribution<int>(3, vocab - 1)(rng));
    r.params.max_tokens = std::uniform_int_distribution<int>(output.min, output.max)(rng);
    r.params.ignore_eos = true;
    requests.push_back(std::move(r));
  }
  return requests;
}

struct Measured {
  RunSummary summary;
  std::uint64_t steps = 0;
};

Measured run_batch(Engine& engine, const std::vector<Request>& requests) {
  const EngineStats before = engine.stats();
  const auto start = std::chrono::steady_clock::now();
  for (const Request& r : requests) engine.submit(r);
  std::vector<RequestResult> results;
  while (engine.has_unfinished())
    for (RequestResult& result : engine.step()) results.push_back(std::move(result));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EngineStats stats = engine.stats();
  Measured m;
  m.steps = stats.steps - before.steps;
  stats.computed_prompt_tokens -= before.computed_prompt_tokens;
  stats.preemptions -= before.preemptions;
  m.summary = summarize(results, stats, wall);
  return m;
}

}  // namespace

int run_bench(std::span<const std::string> args) {
  std::string config_file, input_len = "100:1024", output_len = "100:1024";
  std::vector<std::string> overrides, plugin_dirs;
  int num_prompts = 256;
  std::uint64_t seed = 0;
  bool json = false;
  po::options_description options("loom bench");
  options.add_options()("config", po::value(&config_file)->required(), "the run's TOML config")(
      "num-prompts", po::value(&num_prompts), "prompts submitted at once (1 = single-sequence decode)")(
      "input-len", po::value(&input_len), "prompt length: N or MIN:MAX (uniform)")(
      "output-len", po::value(&output_len), "tokens generated per prompt: N or MIN:MAX (uniform, EOS ignored)")(
      "seed", po::value(&seed), "seed of the random prompts and lengths")(
      "json", po::bool_switch(&json), "print one JSON object instead of the table");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("bench", "loom bench --config FILE [--num-prompts N] [--input-len A:B] [--output-len A:B] [--json]",
                     options, {}, args, vm))
    return 0;
  if (num_prompts < 1) throw UsageError("--num-prompts must be at least 1");
  const Range input = parse_range(input_len, "--input-len"), output = parse_range(output_len, "--output-len");

  EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, std::cerr);
  Engine& engine = *setup.engine;
  const int vocab = static_cast<int>(engine.model().config().vocab_size);
  // Warm-up: threads, caches and page faults are paid here, not in the measurement.
  run_batch(engine, random_requests(std::min(num_prompts, 4), {8, 8}, {8, 8}, vocab, seed + 1));
  Measured m = run_batch(engine, random_requests(num_prompts, input, output, vocab, seed));

  const RunSummary& s = m.summary;
  const double weight_bytes = static_cast<double>(engine.model().weight_bytes());
  // Every step reads every weight once (the lm head only for sampling rows, which is all of it).
  const double weight_gb_s = m.steps * weight_bytes / s.wall_s / 1e9;
  const double decode_tok_s = s.tpot_ms.mean > 0 ? 1e3 / s.tpot_ms.mean : 0;
  if (json) {
    nlohmann::ordered_json j;
    j["num_prompts"] = num_prompts;
    j["input_len"] = input_len;
    j["output_len"] = output_len;
    j["prompt_tokens"] = s.prompt_tokens;
    j["output_tokens"] = s.generated_tokens;
    j["wall_s"] = s.wall_s;
    j["steps"] = m.steps;
    j["output_tok_s"] = s.output_tokens_per_s();
    j["total_tok_s"] = s.total_tokens_per_s();
    j["decode_tok_s_per_seq"] = decode_tok_s;
    j["ttft_ms"] = {{"p50", s.ttft_ms.p50}, {"p90", s.ttft_ms.p90}, {"p99", s.ttft_ms.p99}};
    j["tpot_ms"] = {{"p50", s.tpot_ms.p50}, {"p90", s.tpot_ms.p90}, {"p99", s.tpot_ms.p99}};
    j["weight_bytes"] = weight_bytes;
    j["weight_read_gb_s"] = weight_gb_s;
    j["kv_blocks"] = s.num_blocks;
    j["preemptions"] = s.preemptions;
    std::cout << j.dump(2) << "\n";
  } else {
    print_summary(std::cout, s);
    std::printf("decode          %.1f tokens/s per sequence (1 / mean TPOT), %llu steps\n", decode_tok_s,
                (unsigned long long)m.steps);
    std::printf("weights         %.1f MB read per step, %.2f GB/s achieved\n", weight_bytes / 1e6, weight_gb_s);
  }
  return 0;
}

}  // namespace loom::cli
