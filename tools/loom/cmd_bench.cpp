// `loom bench`: offline throughput in the manner of nano-vLLM's bench.py. N prompts of random
// token ids with input and output lengths drawn from ranges, ignore-eos, or the requests of a
// JSONL file (--input), everything submitted at once; a warm-up run is excluded. Prints output
// and total tokens/s, TTFT/TPOT percentiles, KV usage, and, from the model's byte and flop
// counts per step, the memory bandwidth and TFLOP/s achieved. On a GPU it also measures the
// device's copy bandwidth and GEMM rate and reports the run against its rooflines (roofline.h):
// the workload's own, and that of the steps that ran.
// --json for machines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <iostream>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "core/requests/request_reader.h"
#include "core/runtime/device_limits.h"
#include "tools/loom/bench_report.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/file_checks.h"
#include "tools/loom/progress.h"
#include "tools/loom/random_requests.h"
#include "tools/loom/roofline.h"
#include "tools/loom/run_summary.h"
#include "tools/loom/server_bench.h"

namespace loom::cli {

namespace {


struct Measured {
  RunSummary summary;
  std::uint64_t steps = 0;
  std::vector<StepRecord> step_log;
  double device_s = 0;   // GPU time in forward passes (0 on the CPU)
  Failures failures;
  std::string profile;   // per-phase GPU time, with LOOM_PROFILE=1
  std::vector<RequestLengths> lengths;  // of the requests that finished
};

Measured run_batch(Engine& engine, const std::vector<Request>& requests, bool progress = false) {
  Measured m;
  engine.model().reset_timing();
  engine.record_steps(&m.step_log);
  const EngineStats before = engine.stats();
  const auto start = std::chrono::steady_clock::now();
  for (const Request& r : requests) engine.submit(r);
  std::vector<RequestResult> results;
  auto last_draw = start;
  while (engine.has_unfinished()) {
    for (RequestResult& result : engine.step()) results.push_back(std::move(result));
    const auto now = std::chrono::steady_clock::now();
    if (progress && now - last_draw > std::chrono::milliseconds(250)) {  // a few redraws a second
      draw_progress(results.size(), requests.size(), engine.stats().generated_tokens - before.generated_tokens,
                    std::chrono::duration<double>(now - start).count());
      last_draw = now;
    }
  }
  if (progress && last_draw != start) finish_progress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  engine.record_steps(nullptr);
  EngineStats stats = engine.stats();
  m.steps = stats.steps - before.steps;
  stats.computed_prompt_tokens -= before.computed_prompt_tokens;
  stats.preemptions -= before.preemptions;
  stats.batched_tokens -= before.batched_tokens;
  stats.recomputed_tokens -= before.recomputed_tokens;
  stats.loaded_tokens -= before.loaded_tokens;
  stats.kv.lookup_blocks -= before.kv.lookup_blocks;
  stats.kv.hit_blocks -= before.kv.hit_blocks;
  stats.kv.evictions -= before.kv.evictions;
  for (auto& [name, value] : stats.connector_counts)  // cumulative: this run's part (a rate stays)
    for (const auto& [was_name, was] : before.connector_counts)
      if (was_name == name && !name.ends_with("_per_s")) value -= was;
  stats.draft_tokens -= before.draft_tokens;
  stats.accepted_draft_tokens -= before.accepted_draft_tokens;
  stats.verify_rows -= before.verify_rows;
  m.summary = summarize(results, stats, wall);
  m.failures.add(results);
  for (const RequestResult& r : results)
    if (r.finish_reason != "error") m.lengths.push_back({r.prompt_tokens, r.token_ids.size()});
  m.device_s = engine.model().device_seconds();
  m.profile = engine.model().profile_report();
  return m;
}

struct Workload {
  std::string text;  // as given, for the report
  int num_prompts = 0;
  Range input, output;
  std::vector<Request> requests;  // --input: the file's requests (else random ones of the ranges)
};

// --input FILE: the file's requests, read as `loom generate` reads JSONL (a bad line is an error),
// warmed up with random prompts as long as its token-id prompts.
Workload read_workload(const std::string& file, const SamplingParams& defaults) {
  std::ifstream in(file);
  if (!in) throw UsageError("--input " + file + ": cannot open it");
  Workload w;
  w.text = file;
  w.requests = read_requests(in, file, defaults, InputFormat::kJsonl, BadLinePolicy::kFail).requests;
  if (w.requests.empty()) throw UsageError("--input " + file + ": holds no request");
  w.num_prompts = static_cast<int>(w.requests.size());
  w.input = {1 << 30, 1};
  for (const Request& r : w.requests) {
    const int length = r.prompt ? 16 : static_cast<int>(r.prompt_token_ids.size());  // text: a guess
    w.input = {std::min(w.input.min, length), std::max(w.input.max, length)};
  }
  return w;
}

// "N,IN,OUT" with IN and OUT as N or MIN:MAX.
Workload parse_run(const std::string& text) {
  const auto a = text.find(','), b = a == std::string::npos ? a : text.find(',', a + 1);
  if (b == std::string::npos) throw UsageError("--run " + text + ": expected PROMPTS,INPUT_LEN,OUTPUT_LEN");
  Workload w;
  w.text = text;
  try {
    w.num_prompts = std::stoi(text.substr(0, a));
  } catch (const std::exception&) {
    throw UsageError("--run " + text + ": PROMPTS must be a number");
  }
  if (w.num_prompts < 1) throw UsageError("--run " + text + ": PROMPTS must be at least 1");
  w.input = parse_range(text.substr(a + 1, b - a - 1), "--run input length");
  w.output = parse_range(text.substr(b + 1), "--run output length");
  return w;
}

nlohmann::ordered_json report(Engine& engine, const Workload& w, const Measured& m,
                              const std::optional<runtime::DeviceLimits>& limits, bool json) {
  const RunSummary& s = m.summary;
  const double weight_bytes = static_cast<double>(engine.model().weight_bytes());
  const runtime::DeviceLimits* device = limits ? &*limits : nullptr;
  const Roofline ran = steps_roofline(engine.model(), m.step_log, device);
  const PackingLimits packing{engine.budget().max_num_seqs, engine.budget().max_num_batched_tokens,
                              engine.stats().num_blocks * engine.stats().block_size};
  const Roofline r = workload_roofline(engine.model(), m.lengths, packing, device);
  const double gb_s = ran.bytes / s.wall_s / 1e9, tflops = ran.flops / s.wall_s / 1e12;
  const double decode_tok_s = s.tpot_ms.mean > 0 ? 1e3 / s.tpot_ms.mean : 0;
  const double roofline_tok_s = r.seconds > 0 ? s.generated_tokens / r.seconds : 0;
  if (json) {
    nlohmann::ordered_json j;
    j["device"] = engine.model().describe();
    j["num_prompts"] = w.num_prompts;
    j["run"] = w.text;
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
    j["bytes_moved"] = ran.bytes;  // by the steps that ran
    j["flops"] = ran.flops;
    j["achieved_gb_s"] = gb_s;
    j["achieved_tflops"] = tflops;
    if (limits) {
      j["device_copy_gb_s"] = limits->copy_gb_s;
      j["device_gemm_tflops"] = limits->gemm_tflops;
      j["device_gemv_gb_s"] = limits->gemv_gb_s;
      j["device_cublas_gemv_gb_s"] = limits->cublas_gemv_gb_s;
      j["roofline_s"] = r.seconds;
      j["roofline_output_tok_s"] = roofline_tok_s;
      j["fraction_of_roofline"] = r.seconds / s.wall_s;
      j["steps_roofline_s"] = ran.seconds;
      j["fraction_of_steps_roofline"] = ran.seconds / s.wall_s;
      j["gpu_busy_fraction"] = m.device_s / s.wall_s;
    }
    j["kv_blocks"] = s.num_blocks;
    j["preemptions"] = s.preemptions;
    j["computed_tokens"] = s.computed_tokens;
    j["loaded_tokens"] = s.loaded_tokens;
    j["prefix_hit_rate"] = s.prefix_hit_rate;
    j["prompt_served_fraction"] = s.served_prompt_fraction();
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (const auto& [name, value] : s.connector_counts) counts[name] = value;
    j["kv_connector"] = counts;
    j["recomputed_tokens"] = s.recomputed_tokens;
    j["recomputed_fraction"] = s.recomputed_fraction();
    j["draft_tokens"] = s.draft_tokens;
    j["accepted_draft_tokens"] = s.accepted_draft_tokens;
    j["acceptance_rate"] = s.acceptance_rate();
    j["tokens_per_verify_step"] = s.tokens_per_verify();
    return j;
  }
  print_summary(std::cout, s);
  std::printf("decode          %.1f tokens/s per sequence (1 / mean TPOT), %llu steps\n", decode_tok_s,
              (unsigned long long)m.steps);
  std::printf("memory          %.1f MB of weights per step; %.2f GB/s achieved (weights + KV read)\n",
              weight_bytes / 1e6, gb_s);
  std::printf("compute         %.2f TFLOP/s achieved\n", tflops);
  if (limits) {
    std::printf("device          copy %.0f GB/s, GEMM %.0f TFLOP/s: %.0f%% of bandwidth, %.0f%% of GEMM rate\n",
                limits->copy_gb_s, limits->gemm_tflops, 100 * gb_s / limits->copy_gb_s,
                100 * tflops / limits->gemm_tflops);
    std::printf("roofline        %.3f s (%.1f output tokens/s) for the workload's own work at the best packing; "
                "this run reached %.0f%% of it (%.0f%% of its steps' roofline, %.3f s)\n",
                r.seconds, roofline_tok_s, 100 * r.seconds / s.wall_s, 100 * ran.seconds / s.wall_s, ran.seconds);
    std::printf("GPU busy        %.0f%% of the wall time in forward passes (the rest: host work between steps)\n",
                100 * m.device_s / s.wall_s);
  }
  return {};
}

}  // namespace

int run_bench(std::span<const std::string> args) {
  std::string config_file, input_len = "100:1024", output_len = "100:1024", report_dir, input_file, server, rate = "inf";
  double slo_ttft_ms = 1000, slo_tpot_ms = 100;
  std::vector<std::string> overrides, plugin_dirs, runs;
  int num_prompts = 256;
  std::uint64_t seed = 0;
  bool json = false, accept_failures = false;
  po::options_description options("loom bench");
  options.add_options()("config", po::value(&config_file), "the run's TOML config (not with --server)")(
      "num-prompts", po::value(&num_prompts), "prompts submitted at once (1 = single-sequence decode)")(
      "input-len", po::value(&input_len), "prompt length: N or MIN:MAX (uniform)")(
      "output-len", po::value(&output_len), "tokens generated per prompt: N or MIN:MAX (uniform, EOS ignored)")(
      "run", po::value(&runs)->composing(),
      "PROMPTS,INPUT_LEN,OUTPUT_LEN: one workload; repeat to run several on the model loaded once")(
      "input", po::value(&input_file),
      "a JSONL file of requests (as loom generate reads) instead of random prompts; warmed up with random "
      "prompts of its lengths")(
      "seed", po::value(&seed), "seed of the random prompts and lengths")(
      "json", po::bool_switch(&json), "print JSON (an array with several --run) instead of the table")(
      "accept-failures", po::bool_switch(&accept_failures), "exit 0 even when requests failed (default: exit 3)")(
      "report", po::value(&report_dir),
      "instead of a workload, run the report's experiments (step time by phase, prefill latency, KV memory, "
      "with and without the KV cache) and write DIR/report.md with SVG plots")(
      "server", po::value(&server),
      "http://HOST:PORT: benchmark that running server (loom serve, vLLM, ...) online instead of an engine of "
      "its own: random prompts streamed at --rate")(
      "rate", po::value(&rate)->default_value(rate), "with --server: requests per second, Poisson arrivals; inf: all at once")(
      "slo-ttft-ms", po::value(&slo_ttft_ms)->default_value(slo_ttft_ms), "with --server: goodput's TTFT objective")(
      "slo-tpot-ms", po::value(&slo_tpot_ms)->default_value(slo_tpot_ms), "with --server: goodput's TPOT objective");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("bench",
                     "loom bench --config FILE [--num-prompts N] [--input-len A:B] [--output-len A:B] [--run N,A:B,C:D "
                     "...] [--input FILE] [--json] [--accept-failures] | loom bench --config FILE --report DIR | loom bench "
                     "--server http://HOST:PORT [--rate R] [--num-prompts N] [--input-len A:B] [--output-len A:B]",
                     options, {}, args, vm))
    return 0;
  if (!server.empty()) {
    for (const char* engine_option : {"config", "run", "input", "report", "set", "plugin-dir", "accept-failures"})
      if (vm.count(engine_option) && !vm[engine_option].defaulted())
        throw UsageError(std::string("--server benchmarks a running server; leave out --") + engine_option);
    ServerBenchOptions o;
    o.url = server;
    try {
      o.rate = rate == "inf" ? std::numeric_limits<double>::infinity() : std::stod(rate);
    } catch (const std::exception&) {
      throw UsageError("--rate " + rate + ": expected requests per second (a number > 0) or inf");
    }
    if (!(o.rate > 0)) throw UsageError("--rate " + rate + ": expected requests per second (a number > 0) or inf");
    if (num_prompts < 1) throw UsageError("--num-prompts must be at least 1");
    o.num_prompts = num_prompts;
    o.input = parse_range(input_len, "--input-len");
    o.output = parse_range(output_len, "--output-len");
    o.seed = seed;
    o.slo_ttft_ms = slo_ttft_ms;
    o.slo_tpot_ms = slo_tpot_ms;
    o.json = json;
    return run_server_bench(o);
  }
  if (config_file.empty()) throw UsageError("give --config FILE (or --server URL to benchmark a running server)");
  if (!report_dir.empty()) {
    for (const char* workload_option : {"run", "num-prompts", "input-len", "output-len", "input", "json"})
      if (vm.count(workload_option) && !vm[workload_option].defaulted())
        throw UsageError(std::string("--report runs its own experiments; leave out --") + workload_option);
    check_output_folder(report_dir, "--report");
    EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, std::cerr);
    std::string command = "loom bench";
    for (const std::string& a : args) command += " " + a;
    write_bench_report(*setup.engine, {command, config_file, seed}, report_dir, std::cerr);
    std::cout << "report: " << (std::filesystem::path(report_dir) / "report.md").string()
              << " (plots beside it, figures in report.json)\n";
    return 0;
  }
  std::vector<Workload> workloads;
  for (const std::string& run : runs) workloads.push_back(parse_run(run));
  if (!input_file.empty()) {
    if (!runs.empty() || vm.count("num-prompts") || vm.count("input-len") || vm.count("output-len"))
      throw UsageError("give either --input or random prompts (--run, --num-prompts/--input-len/--output-len), not both");
    std::ifstream probe(input_file);
    if (!probe) throw UsageError("--input " + input_file + ": cannot open it");
  } else if (workloads.empty()) {
    if (num_prompts < 1) throw UsageError("--num-prompts must be at least 1");
    workloads.push_back({std::to_string(num_prompts) + "," + input_len + "," + output_len, num_prompts,
                         parse_range(input_len, "--input-len"), parse_range(output_len, "--output-len"), {}});
  } else if (vm.count("num-prompts") || vm.count("input-len") || vm.count("output-len")) {
    throw UsageError("give either --run (repeatable) or --num-prompts/--input-len/--output-len, not both");
  }

  EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, std::cerr);
  Engine& engine = *setup.engine;
  std::optional<runtime::DeviceLimits> limits;
  if (engine.model().device().kind == sdk::DeviceKind::cuda) {
    limits = runtime::measure_device_limits(engine.model().kv_dtype() == sdk::DType::f16);
    std::fprintf(stderr,
                 "device limits: copy %.0f GB/s (read + write), dense GEMM %.0f TFLOP/s; one-row GEMV streams "
                 "%.0f GB/s (cuBLAS %.0f GB/s)\n",
                 limits->copy_gb_s, limits->gemm_tflops, limits->gemv_gb_s, limits->cublas_gemv_gb_s);
  }
  const int vocab = static_cast<int>(engine.model().config().vocab_size);
  const SamplingParams sampling = sampling_defaults(setup.config);
  if (!input_file.empty()) workloads.push_back(read_workload(input_file, sampling));
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  Failures failures;
  for (const Workload& w : workloads) {
    // Warm-up: the workload's own prompts (other token ids) with a few output tokens, so that
    // one-time costs are paid here, not measured: threads, page faults, CUDA graph captures, and
    // the loading of each GPU kernel at its first launch (a prefill's cuBLAS kernels depend on
    // its token count).
    run_batch(engine, random_requests(w.num_prompts, w.input, {4, 4}, vocab, seed + 1, sampling));
    const Measured m =
        run_batch(engine, w.requests.empty() ? random_requests(w.num_prompts, w.input, w.output, vocab, seed, sampling)
                                             : w.requests,
                  progress_wanted());
    if (!json && workloads.size() > 1) std::printf("== run %s (prompts, input length, output length) ==\n", w.text.c_str());
    all.push_back(report(engine, w, m, limits, json));
    if (!m.profile.empty()) std::fprintf(stderr, "%s", m.profile.c_str());
    failures.merge(m.failures);
  }
  if (json) std::cout << (all.size() == 1 ? all[0] : all).dump(2) << "\n";
  return exit_code_for_failures(failures, accept_failures, "bench", std::cerr);
}

}  // namespace loom::cli
