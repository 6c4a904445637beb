// `loom generate`: batch generation from a text or JSONL file, one JSONL result per request
// (flushed as each finishes), a progress bar on a terminal, and a summary at the end.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/requests/request_reader.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/file_checks.h"
#include "tools/loom/progress.h"
#include "tools/loom/run_summary.h"
#include "tools/loom/stop_signals.h"

namespace loom::cli {

namespace fs = std::filesystem;

namespace {

// Results in input order: each request's results wait until every request before it is written.
class OrderedWriter {
 public:
  OrderedWriter(ResultWriter& writer, const std::vector<Request>& requests) : writer_(writer) {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      position_[requests[i].id] = i;
      expected_.push_back(std::max(1, requests[i].params.n));
    }
    done_.resize(requests.size());
  }
  void write(const RequestResult& result) {
    auto& slot = done_[position_.at(result.id)];
    slot.push_back(result);
    while (next_ < done_.size() && done_[next_].size() == static_cast<std::size_t>(expected_[next_])) {
      std::sort(done_[next_].begin(), done_[next_].end(),
                [](const RequestResult& a, const RequestResult& b) { return a.index < b.index; });
      for (const RequestResult& r : done_[next_]) writer_.write(r);
      done_[next_].clear();
      ++next_;
    }
  }

 private:
  ResultWriter& writer_;
  std::unordered_map<std::string, std::size_t> position_;
  std::vector<std::int32_t> expected_;
  std::vector<std::vector<RequestResult>> done_;
  std::size_t next_ = 0;
};

}  // namespace

int run_generate(std::span<const std::string> args) {
  std::string config_file, input_file, output_file, model, input_format = "auto", on_bad_line = "skip";
  std::vector<std::string> overrides, plugin_dirs, prompts;
  bool quiet = false, accept_failures = false, ordered = false;
  std::optional<std::int64_t> max_tokens, top_k, seed;
  std::optional<double> temperature, top_p;
  po::options_description options("loom generate");
  options.add_options()("config,c", po::value(&config_file), "the run's TOML config (default: the defaults)")(
      "model,m", po::value(&model), "the model: a Hugging Face folder or a llama2.c .bin ([model] path)")(
      "input,i", po::value(&input_file),
      "requests: a text file (one prompt per line) or JSONL; - reads standard input")(
      "prompt,p", po::value(&prompts)->composing(), "one prompt (repeatable), instead of --input")(
      "output,o", po::value(&output_file), "write results here (JSONL); - or none: standard output")(
      "max-tokens", po::value<std::int64_t>()->notifier([&](std::int64_t v) { max_tokens = v; }),
      "tokens generated per request, at most: the default, and a cap on requests that ask for more")(
      "temperature", po::value<double>()->notifier([&](double v) { temperature = v; }),
      "default temperature (0 = greedy) for requests that do not set one")(
      "top-p", po::value<double>()->notifier([&](double v) { top_p = v; }), "default top-p")(
      "top-k", po::value<std::int64_t>()->notifier([&](std::int64_t v) { top_k = v; }), "default top-k (0 = off)")(
      "seed", po::value<std::int64_t>()->notifier([&](std::int64_t v) { seed = v; }),
      "the run's seed ([engine] seed): requests without their own derive theirs from it")(
      "input-format", po::value(&input_format)->default_value(input_format), "auto | text | jsonl")(
      "on-bad-line", po::value(&on_bad_line)->default_value(on_bad_line),
      "skip (report and go on) | fail (stop before generating)")(
      "ordered", po::bool_switch(&ordered), "write results in input order (default: as each finishes)")(
      "quiet,q", po::bool_switch(&quiet), "no progress bar and no summary")(
      "accept-failures", po::bool_switch(&accept_failures),
      "exit 0 even when requests failed (default: exit 3; their results are written either way)");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("generate",
                     "loom generate (--config FILE | -m MODEL) (--input FILE|- | -p PROMPT...) [--output FILE|-] "
                     "[--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--ordered] "
                     "[--accept-failures] [--set key=value]...",
                     options, {}, args, vm))
    return 0;
  if (config_file.empty() && model.empty()) throw UsageError("give --config FILE or -m/--model PATH (or both)");
  if (input_file.empty() == prompts.empty()) throw UsageError("give either --input FILE (or -) or -p/--prompt TEXT");
  InputFormat format = input_format == "text"    ? InputFormat::kText
                       : input_format == "jsonl" ? InputFormat::kJsonl
                       : input_format == "auto"  ? InputFormat::kAuto
                                                 : throw UsageError("--input-format must be auto, text or jsonl");
  if (on_bad_line != "skip" && on_bad_line != "fail") throw UsageError("--on-bad-line must be skip or fail");
  // The flags are --set overrides that win over the config's values.
  if (!model.empty()) overrides.push_back("model.path=" + fs::absolute(model).string());
  if (max_tokens) overrides.push_back("sampling.max_tokens=" + std::to_string(*max_tokens));
  if (temperature) overrides.push_back("sampling.temperature=" + std::to_string(*temperature));
  if (top_p) overrides.push_back("sampling.top_p=" + std::to_string(*top_p));
  if (top_k) overrides.push_back("sampling.top_k=" + std::to_string(*top_k));
  if (seed) overrides.push_back("engine.seed=" + std::to_string(*seed));

  // The files first: a typo costs nothing, and the results never overwrite the requests. "-" is
  // standard input / output; the summary and progress always go to standard error.
  const bool from_stdin = input_file == "-", to_stdout = output_file.empty() || output_file == "-";
  if (!input_file.empty() && !from_stdin) check_readable_file(input_file, "--input");
  if (!to_stdout) check_writable_file(output_file, "--output", from_stdin ? "" : input_file, "--input");
  std::ostringstream silenced;  // --quiet: not even the start-up lines
  EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, quiet ? silenced : std::cerr);
  const SamplingParams defaults = sampling_defaults(setup.config);
  ReadResult read;
  if (!prompts.empty()) {
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      Request r;
      r.id = "prompt-" + std::to_string(i + 1);
      r.prompt = prompts[i];
      r.params = defaults;
      read.requests.push_back(std::move(r));
    }
  } else {
    std::ifstream input_stream;
    if (!from_stdin) {
      input_stream.open(input_file);
      if (!input_stream) throw UsageError("cannot read --input " + input_file);
    }
    // A file named *.jsonl or *.json is JSONL whatever its first line says.
    const std::string extension = fs::path(input_file).extension().string();
    if (format == InputFormat::kAuto && (extension == ".jsonl" || extension == ".json")) format = InputFormat::kJsonl;
    read = read_requests(from_stdin ? std::cin : input_stream, from_stdin ? "<stdin>" : input_file, defaults, format,
                         on_bad_line == "fail" ? BadLinePolicy::kFail : BadLinePolicy::kSkip);
  }
  for (const std::string& warning : read.warnings) std::cerr << "loom generate: warning: " << warning << "\n";
  for (const BadLine& bad : read.bad_lines) std::cerr << "loom generate: skipped " << bad.message << "\n";
  if (max_tokens)  // a cap, also on requests that ask for more
    for (Request& r : read.requests) r.params.max_tokens = std::min<std::int32_t>(r.params.max_tokens, *max_tokens);

  std::ofstream file_out;
  if (!to_stdout) {
    file_out.open(output_file);
    if (!file_out) throw UsageError("cannot write --output " + output_file);
  }
  ResultWriter writer(to_stdout ? std::cout : file_out, to_stdout ? "stdout" : output_file);
  std::optional<OrderedWriter> in_order;
  if (ordered) in_order.emplace(writer, read.requests);

  Engine& engine = *setup.engine;
  const auto start = std::chrono::steady_clock::now();
  for (const Request& request : read.requests) engine.submit(request);
  std::size_t total = 0;
  for (const Request& request : read.requests) total += static_cast<std::size_t>(std::max(1, request.params.n));
  const bool progress = !quiet && progress_wanted();
  const std::string sink = to_stdout ? std::string("standard output") : output_file;
  std::vector<RequestResult> results;
  StopSignals stop;
  while (engine.has_unfinished()) {
    std::vector<RequestResult> done = engine.step();
    try {
      for (RequestResult& result : done) {
        if (in_order)
          in_order->write(result);
        else
          writer.write(result);
        results.push_back(std::move(result));
      }
    } catch (const Error& e) {
      // A write that stopped part-way (full disk) leaves a torn last line: cut the file back to
      // its complete lines, so it stays valid JSONL.
      if (!to_stdout) {
        file_out.close();
        std::error_code ignored;
        fs::resize_file(output_file, writer.bytes_written(), ignored);
      }
      throw Error(std::string(e.what()) + "; " + sink + " keeps the " + std::to_string(writer.lines_written()) +
                  " complete result lines written before");
    }
    if (progress)
      draw_progress(results.size(), total, engine.stats().generated_tokens,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (const int signal = stop.received()) {
      if (progress) finish_progress();
      std::cerr << "loom generate: stopped by " << signal_name(signal) << ": " << writer.lines_written()
                << " result lines written to " << sink << " (each whole); " << (total - results.size())
                << " samples unfinished, without a line\n";
      return 128 + signal;
    }
  }
  if (progress) finish_progress();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RunSummary summary = summarize(results, engine.stats(), wall);
  summary.skipped_lines = read.bad_lines.size();
  if (!quiet) {
    print_summary(std::cerr, summary);
    std::fprintf(stderr, "start-up        %.2f s before the first request (config, plugins, model, KV pool)\n",
                 setup.startup_s);
  }
  Failures failures;
  failures.add(results);
  return exit_code_for_failures(failures, accept_failures, "generate", std::cerr);
}

}  // namespace loom::cli
