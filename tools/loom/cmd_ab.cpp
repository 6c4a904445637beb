// `loom ab`: one workload, two or more configurations, side by side. The model is loaded once;
// each arm replays the same trace on a virtual clock (see ab_run.h) with every seed asked for.
//   loom ab --config A.toml --workload trace.jsonl --vary evictor.plugin=lru,lfu,arc --report DIR
//   loom ab --config A.toml --config B.toml --workload scan --seeds 3 --report DIR
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/io/model_loader.h"
#include "core/requests/request_reader.h"
#include "core/workloads/workload.h"
#include "tools/loom/ab_report.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/file_checks.h"
#include "tools/loom/progress.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;

struct Arm {
  std::string name;
  std::string config_file;
  std::vector<std::string> overrides;
};

// A plugin given by its path is labelled by its name: ".../libloom_evictor_fifo.so" -> "fifo".
std::string arm_label(const std::string& value) {
  const auto plugin = parse_plugin_file_name(value);
  return plugin ? plugin->name : value;
}

std::vector<Arm> arms_from(const std::vector<std::string>& configs, const std::string& vary,
                           const std::vector<std::string>& overrides) {
  std::vector<Arm> arms;
  if (!vary.empty()) {
    if (configs.size() != 1) throw UsageError("--vary takes exactly one --config (the base)");
    auto eq = vary.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--vary " + vary + ": expected section.key=v1,v2,...");
    const std::string key = vary.substr(0, eq);
    std::stringstream values(vary.substr(eq + 1));
    for (std::string value; std::getline(values, value, ',');) {
      Arm arm{arm_label(value), configs[0], overrides};
      arm.overrides.push_back(key + "=" + value);
      arms.push_back(arm);
    }
    // Labels must tell the arms apart: two plugins of one name keep their full values.
    for (std::size_t a = 0; a < arms.size(); ++a)
      for (std::size_t b = a + 1; b < arms.size(); ++b)
        if (arms[a].name == arms[b].name) {
          for (Arm& arm : arms) arm.name = arm.overrides.back().substr(key.size() + 1);
          return arms;
        }
  } else {
    for (const auto& file : configs) arms.push_back({fs::path(file).stem().string(), file, overrides});
  }
  if (arms.size() < 2)
    throw UsageError("an A/B test needs at least two arms: give --vary key=a,b or two --config files");
  return arms;
}

std::vector<Request> workload_requests(const std::string& workload, std::uint64_t seed, std::size_t count,
                                       const io::ModelConfig& model, const SamplingParams& defaults) {
  std::stringstream trace;
  std::string source = workload;
  if (fs::exists(workload)) {
    std::ifstream in(workload);
    trace << in.rdbuf();
  } else if (auto kind = parse_workload_kind(workload)) {
    WorkloadSpec spec;
    spec.kind = *kind;
    spec.seed = seed;
    spec.requests = count;
    spec.vocab_size = static_cast<std::int32_t>(model.vocab_size);
    fit_to_context(spec, model.context_length());
    write_workload(spec, trace);
    source = workload + " (generated, seed " + std::to_string(seed) + ")";
  } else {
    throw UsageError("--workload " + workload +
                     ": no such file, and not a workload kind "
                     "(chat, system-prompt, few-shot, scan, multi-turn)");
  }
  ReadResult read = read_requests(trace, source, defaults, InputFormat::kJsonl, BadLinePolicy::kFail);
  std::stable_sort(read.requests.begin(), read.requests.end(),
                   [](const Request& a, const Request& b) { return a.arrival_time < b.arrival_time; });
  return read.requests;
}

// A trace whose token ids or prompts do not fit the model would fail every request of every arm
// and compare nothing: refused before anything runs.
void check_trace_fits(const std::vector<Request>& trace, const io::ModelConfig& model, const std::string& workload) {
  const auto vocab = static_cast<std::int32_t>(model.vocab_size);
  const auto context = static_cast<std::size_t>(model.context_length());
  for (const Request& r : trace) {
    for (std::int32_t id : r.prompt_token_ids)
      if (id < 0 || id >= vocab)
        throw UsageError("--workload " + workload + ": request " + r.id + " has token id " + std::to_string(id) +
                         ", outside the model's vocabulary of " + std::to_string(vocab) +
                         "; write a trace that fits with loom workload --vocab " + std::to_string(vocab) +
                         " (or --model PATH)");
    if (r.prompt_token_ids.size() >= context)
      throw UsageError("--workload " + workload + ": request " + r.id + " has a prompt of " +
                       std::to_string(r.prompt_token_ids.size()) + " tokens; the model's context is " +
                       std::to_string(context));
  }
}

}  // namespace

int run_ab(std::span<const std::string> args) {
  std::vector<std::string> configs, overrides, plugin_dirs;
  std::string workload, vary, report;
  int seeds = 1;
  std::int64_t requests = 200;
  StepCost cost;
  std::string clock = "virtual";
  po::options_description options("loom ab");
  options.add_options()("config", po::value(&configs)->composing()->required(),
                        "a config; give it once with --vary, or once per arm")(
      "workload", po::value(&workload)->required(),
      "a JSONL trace, or a kind to generate: chat | system-prompt | few-shot | scan | multi-turn")(
      "vary", po::value(&vary), "section.key=v1,v2,...: one arm per value, on the one --config")(
      "report", po::value(&report), "folder for report.md, report.json and plot.svg (default: the table only)")(
      "seeds", po::value(&seeds),
      "repeat with this many seeds (generated workloads: the trace's seed; else [engine] seed)")(
      "requests", po::value(&requests), "requests in a generated workload")("step-ms", po::value(&cost.step_ms),
                                                                            "virtual clock: cost of a step")(
      "token-ms", po::value(&cost.token_ms), "virtual clock: cost of each token a step computes")(
      "clock", po::value(&clock)->default_value(clock),
      "virtual (steps cost --step-ms and --token-ms) | measured (steps take the time they took: a GPU's latencies)");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help(
          "ab", "loom ab --config FILE --workload FILE|KIND (--vary key=v1,v2 | --config FILE2 ...) [--report DIR]",
          options, {}, args, vm))
    return 0;
  if (seeds < 1) throw UsageError("--seeds must be at least 1");
  if (clock != "virtual" && clock != "measured")
    throw UsageError("--clock " + clock + ": expected virtual or measured");
  cost.measured = clock == "measured";
  if (cost.measured && (vm.count("step-ms") || vm.count("token-ms")))
    throw UsageError("--step-ms and --token-ms set the virtual clock: not with --clock measured");
  const std::size_t request_count = workload_request_count(requests);
  if (!report.empty()) check_output_folder(report, "--report");  // not after every arm has run
  const std::vector<Arm> arms = arms_from(configs, vary, overrides);

  // Every arm must be valid before anything runs; they must share one model, loaded once.
  std::vector<Config> arm_configs;
  for (const Arm& arm : arms) arm_configs.push_back(load_config(find_config(arm.config_file), arm.overrides));
  auto model_path = model_path_of;
  for (const Config& c : arm_configs)
    if (model_path(c) != model_path(arm_configs[0]))
      throw UsageError("the arms use different models (" + model_path(arm_configs[0]).string() + ", " +
                       model_path(c).string() + "): an A/B test compares policies on one model");
  PluginRegistry registry = make_registry(plugin_dirs);
  const io::LoadedModel model = io::load_model(model_path(arm_configs[0]));
  std::cerr << "loom ab: " << arms.size() << " arms, model " << model_path(arm_configs[0]).string() << "\n";

  std::vector<ArmSeries> series(arms.size());
  AbContext context{workload, model_path(arm_configs[0]).string(), cost, {}};
  for (int s = 0; s < seeds; ++s) {
    const std::uint64_t seed = static_cast<std::uint64_t>(s);
    context.seeds.push_back(seed);
    const std::vector<Request> trace =
        workload_requests(workload, seed, request_count, model.config, sampling_defaults(arm_configs[0]));
    check_trace_fits(trace, model.config, workload);
    for (std::size_t a = 0; a < arms.size(); ++a) {
      Config config = load_config(find_config(arms[a].config_file), [&] {
        auto o = arms[a].overrides;
        o.push_back("engine.seed=" + std::to_string(seed));
        return o;
      }());
      const std::string label = "  seed " + std::to_string(seed) + ", " + arms[a].name + " ";
      const bool progress = progress_wanted();
      if (!progress) std::cerr << label << "..." << std::flush;
      ArmResult result =
          run_arm(arms[a].name, config, registry, model, trace, cost, progress ? label.c_str() : nullptr);
      if (progress) erase_progress();
      char took[32];
      std::snprintf(took, sizeof took, "%s%.2f s\n", progress ? "" : " ", result.real_wall_s);
      std::cerr << (progress ? label : std::string()) << took;
      series[a].name = arms[a].name;
      if (a > 0 && result.outputs != series[0].runs.back().outputs) series[a].outputs_identical = false;
      series[a].runs.push_back(std::move(result));
    }
  }
  print_ab_table(std::cout, series, cost.clock_name());
  if (!report.empty()) {
    write_ab_report(report, context, series);
    std::cout << "\nreport: " << (fs::path(report) / "report.md").string() << ", report.json, plot.svg\n";
  }
  return 0;
}

}  // namespace loom::cli
