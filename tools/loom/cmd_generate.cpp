// `loom generate`: batch generation from a text or JSONL file, one JSONL result per request
// (flushed as each finishes), a progress bar on a terminal, and a summary at the end.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "core/requests/request_reader.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/file_checks.h"
#include "tools/loom/run_summary.h"

namespace loom::cli {

namespace {

void draw_progress(std::size_t done, std::size_t total, std::uint64_t tokens, double elapsed) {
  const int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  const double rate = elapsed > 0 ? tokens / elapsed : 0;
  const double eta = done ? elapsed * (total - done) / done : 0;
  std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu requests  %.1f tok/s  ETA %.0f s ", filled,
               "##############################", width - filled, "", done, total, rate, eta);
  std::fflush(stderr);
}

}  // namespace

int run_generate(std::span<const std::string> args) {
  std::string config_file, input_file, output_file, input_format = "auto", on_bad_line = "skip";
  std::vector<std::string> overrides, plugin_dirs;
  bool quiet = false, accept_failures = false;
  po::options_description options("loom generate");
  options.add_options()("config", po::value(&config_file)->required(), "the run's TOML config")(
      "input", po::value(&input_file)->required(),
      "requests: a text file (one prompt per line) or JSONL; - reads standard input")(
      "output", po::value(&output_file), "write results here (JSONL); - or none: standard output")(
      "input-format", po::value(&input_format), "auto | text | jsonl")(
      "on-bad-line", po::value(&on_bad_line), "skip (report and go on) | fail (stop before generating)")(
      "quiet", po::bool_switch(&quiet), "no progress bar and no summary")(
      "accept-failures", po::bool_switch(&accept_failures),
      "exit 0 even when requests failed (default: exit 3; their results are written either way)");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("generate",
                     "loom generate --config FILE --input FILE|- [--output FILE|-] [--accept-failures] "
                     "[--set key=value]...",
                     options, {}, args, vm))
    return 0;
  InputFormat format = input_format == "text" ? InputFormat::kText
                       : input_format == "jsonl" ? InputFormat::kJsonl
                       : input_format == "auto"  ? InputFormat::kAuto
                                                 : throw UsageError("--input-format must be auto, text or jsonl");
  if (on_bad_line != "skip" && on_bad_line != "fail") throw UsageError("--on-bad-line must be skip or fail");

  // The files first: a typo costs nothing, and the results never overwrite the requests. "-" is
  // standard input / output; the summary and progress always go to standard error.
  const bool from_stdin = input_file == "-", to_stdout = output_file.empty() || output_file == "-";
  if (!from_stdin) check_readable_file(input_file, "--input");
  if (!to_stdout) check_writable_file(output_file, "--output", from_stdin ? "" : input_file, "--input");
  EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, std::cerr);
  std::ifstream input_stream;
  if (!from_stdin) {
    input_stream.open(input_file);
    if (!input_stream) throw UsageError("cannot read --input " + input_file);
  }
  ReadResult read = read_requests(from_stdin ? std::cin : input_stream, from_stdin ? "<stdin>" : input_file,
                                  sampling_defaults(setup.config), format,
                                  on_bad_line == "fail" ? BadLinePolicy::kFail : BadLinePolicy::kSkip);
  for (const BadLine& bad : read.bad_lines) std::cerr << "loom generate: skipped " << bad.message << "\n";

  std::ofstream file_out;
  if (!to_stdout) {
    file_out.open(output_file);
    if (!file_out) throw UsageError("cannot write --output " + output_file);
  }
  ResultWriter writer(to_stdout ? std::cout : file_out, to_stdout ? "stdout" : output_file);

  Engine& engine = *setup.engine;
  const auto start = std::chrono::steady_clock::now();
  for (const Request& request : read.requests) engine.submit(request);
  std::size_t total = 0;
  for (const Request& request : read.requests) total += static_cast<std::size_t>(std::max(1, request.params.n));
  const bool progress = !quiet && isatty(STDERR_FILENO);
  std::vector<RequestResult> results;
  std::uint64_t tokens = 0;
  while (engine.has_unfinished()) {
    for (RequestResult& result : engine.step()) {
      writer.write(result);
      tokens += result.token_ids.size();
      results.push_back(std::move(result));
    }
    if (progress)
      draw_progress(results.size(), total, engine.stats().generated_tokens,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (progress) std::cerr << "\n";
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const RunSummary summary = summarize(results, engine.stats(), wall);
  if (!quiet) print_summary(std::cerr, summary);
  Failures failures;
  failures.add(results);
  return exit_code_for_failures(failures, accept_failures, "generate", std::cerr);
}

}  // namespace loom::cli
