#include "tools/loom/bench_report.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config/byte_size.h"
#include "core/model/phase_times.h"
#include "loom/error.h"
#include "tools/loom/random_requests.h"
#include "tools/loom/svg_chart.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// The groups of a step's time, bottom up in the plots.
const std::vector<std::string> kCategories = {"GEMMs", "attention", "norms and activations", "sampling", "host"};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

// One engine step; a failed request stops the report (its figures would be of other work).
void step_checked(Engine& engine) {
  for (const RequestResult& r : engine.step())
    if (r.finish_reason == "error") throw Error("loom bench --report: request " + r.id + " failed: " + r.error);
}

void drain(Engine& engine) {
  while (engine.has_unfinished()) step_checked(engine);
}

// The decode steps of a batch: timed once every request has its first token (prefills untimed).
struct DecodeTiming {
  double wall_s = 0;
  double device_s = 0;  // GPU time in forward passes (0 on the CPU)
  std::uint64_t steps = 0;
  PhaseSeconds phases;  // when profiled
};

DecodeTiming time_decode(Engine& engine, const std::vector<Request>& requests, bool profile) {
  Model& model = engine.model();
  model.set_profiling(profile);
  const std::uint64_t generated = engine.stats().generated_tokens;
  for (const Request& r : requests) engine.submit(r);
  while (engine.has_unfinished() && engine.stats().generated_tokens - generated < requests.size()) step_checked(engine);
  model.reset_timing();
  const std::uint64_t steps = engine.stats().steps;
  const auto start = Clock::now();
  drain(engine);
  DecodeTiming t;
  t.wall_s = seconds_since(start);
  t.steps = engine.stats().steps - steps;
  t.device_s = model.device_seconds();
  t.phases = model.phase_seconds();
  model.set_profiling(false);
  return t;
}

// A decode step's time: its length and the share of each category (kCategories).
struct StepShares {
  double step_ms = 0;
  std::map<std::string, double> share;
};

// On the CPU the runner's phases are host time, and the rest of the wall is the engine's own work.
// On the GPU the phases are measured eagerly (graphs hide them), so they only split the device
// time of a second, graphed run — the steps as they are served — whose remainder is host time.
StepShares step_shares(Engine& engine, const std::vector<Request>& requests, const std::vector<Request>& warm_up) {
  time_decode(engine, warm_up, false);  // graphs captured, kernels loaded, pages touched
  const DecodeTiming profiled = time_decode(engine, requests, true);
  double phase_total = 0;
  for (const auto& [name, s] : profiled.phases) phase_total += s;
  StepShares out;
  for (const std::string& c : kCategories) out.share[c] = 0;
  if (engine.model().device().kind == sdk::DeviceKind::cpu) {
    out.step_ms = profiled.wall_s / std::max<std::uint64_t>(1, profiled.steps) * 1e3;
    for (const auto& [name, s] : profiled.phases) out.share[std::string(phase_category(name))] += s / profiled.wall_s;
    out.share["host"] = std::max(0.0, 1.0 - phase_total / profiled.wall_s);
    return out;
  }
  const DecodeTiming served = time_decode(engine, requests, false);
  const double on_device = std::min(1.0, served.device_s / served.wall_s);
  out.step_ms = served.wall_s / std::max<std::uint64_t>(1, served.steps) * 1e3;
  for (const auto& [name, s] : profiled.phases)
    out.share[std::string(phase_category(name))] += phase_total > 0 ? on_device * s / phase_total : 0;
  out.share["host"] = 1.0 - on_device;
  return out;
}

// Seconds from submitting one prompt of `length` random tokens to its first token.
double prefill_seconds(Engine& engine, int length, int vocab, std::uint64_t seed) {
  SamplingParams greedy;
  const std::vector<Request> one = random_requests(1, {length, length}, {1, 1}, vocab, seed, greedy);
  const auto start = Clock::now();
  engine.submit(one[0]);
  drain(engine);
  return seconds_since(start);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Values of `candidates` within [1, limit], keeping at least the first.
std::vector<int> within(const std::vector<int>& candidates, int limit) {
  std::vector<int> out;
  for (int c : candidates)
    if (c <= limit) out.push_back(c);
  if (out.empty()) out.push_back(std::max(1, limit));
  return out;
}

std::string share_table(const std::string& first_column, const std::vector<int>& keys,
                        const std::vector<StepShares>& rows) {
  std::string md = "| " + first_column + " | step ms |";
  for (const std::string& c : kCategories) md += " " + c + " |";
  md += "\n|---|---|";
  for (std::size_t i = 0; i < kCategories.size(); ++i) md += "---|";
  md += "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    md +=
        "| " + std::to_string(keys[i]) + " | " + format(rows[i].step_ms < 1 ? "%.3f" : "%.2f", rows[i].step_ms) + " |";
    for (const std::string& c : kCategories) md += format(" %.1f%% |", 100.0 * rows[i].share.at(c));
    md += "\n";
  }
  return md;
}

StackedBars share_bars(const std::string& title, const std::string& x_label, const std::vector<int>& keys,
                       const std::vector<StepShares>& rows) {
  StackedBars bars{title, x_label, {}, kCategories, {}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    bars.groups.push_back(std::to_string(keys[i]));
    std::vector<double> shares;
    for (const std::string& c : kCategories) shares.push_back(rows[i].share.at(c));
    bars.shares.push_back(shares);
  }
  return bars;
}

Json shares_json(const std::string& key, const std::vector<int>& keys, const std::vector<StepShares>& rows) {
  Json out = Json::array();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Json row{{key, keys[i]}, {"step_ms", rows[i].step_ms}};
    for (const std::string& c : kCategories) row[c] = rows[i].share.at(c);
    out.push_back(row);
  }
  return out;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush()) throw Error("loom bench --report: cannot write " + path.string());
}

}  // namespace

void write_bench_report(Engine& engine, const BenchReportContext& context, const fs::path& dir, std::ostream& log) {
  fs::create_directories(dir);
  Model& model = engine.model();
  const bool gpu = model.device().kind == sdk::DeviceKind::cuda;
  const int vocab = static_cast<int>(model.config().vocab_size);
  const int context_len = static_cast<int>(engine.max_model_len());
  const int max_seqs = static_cast<int>(engine.budget().max_num_seqs);
  const SamplingParams greedy;
  std::uint64_t seed = context.seed * 1000 + 1;
  Json json{{"model", model.describe()}, {"config", context.config_file}, {"command", context.command}};

  // 1 and 2: decode steps by batch size, and by context length.
  const int prompt_len = std::min(128, context_len / 4);
  const int decode_tokens = gpu ? 32 : 16;
  const std::vector<int> batches =
      within(gpu ? std::vector<int>{1, 8, 32, 64, 128, 256} : std::vector<int>{1, 2, 4, 8, 16, 32}, max_seqs);
  // The decode steps of `batch` sequences with prompts of `prompt` tokens, after a warm-up.
  auto decode_point = [&](int batch, int prompt) {
    const auto warm_up = random_requests(batch, {prompt, prompt}, {4, 4}, vocab, ++seed, greedy);
    const auto measured =
        random_requests(batch, {prompt, prompt}, {decode_tokens + 1, decode_tokens + 1}, vocab, ++seed, greedy);
    return step_shares(engine, measured, warm_up);
  };
  std::vector<StepShares> by_batch;
  for (int b : batches) {
    log << "loom bench --report: decode steps at batch " << b << "\n";
    by_batch.push_back(decode_point(b, prompt_len));
  }
  const int context_batch = std::min(gpu ? 16 : 4, max_seqs);
  const std::vector<int> contexts = within({64, 128, 256, 512, 1024, 2048, 4096}, context_len - decode_tokens - 2);
  std::vector<StepShares> by_context;
  for (int c : contexts) {
    log << "loom bench --report: decode steps at context " << c << "\n";
    by_context.push_back(decode_point(context_batch, c));
  }

  // 3: prefill latency, the median of three after a warm-up at each length.
  std::vector<int> lengths;
  for (int n = 16; n <= context_len - 2; n *= 2) lengths.push_back(n);
  std::vector<double> prefill_ms;
  log << "loom bench --report: prefill latency at " << lengths.size() << " prompt lengths\n";
  for (int n : lengths) {
    prefill_seconds(engine, n, vocab, ++seed);
    std::vector<double> runs;
    for (int r = 0; r < 3; ++r) runs.push_back(prefill_seconds(engine, n, vocab, ++seed));
    prefill_ms.push_back(median(runs) * 1e3);
  }

  // 4: KV-cache memory, from the model's shape (what a KV pool holds per token).
  const sdk::ModelShape shape = model.shape();
  const double kv_per_token = 2.0 * shape.num_layers * shape.num_kv_heads * shape.head_dim * shape.kv_bytes_per_element;
  const double weight_bytes = static_cast<double>(model.weight_bytes());
  // GiB for models of a GiB or more, MiB below, so that small models' tables are not all zeros.
  const bool in_gib = weight_bytes >= (1 << 30);
  const double unit = in_gib ? double(1 << 30) : double(1 << 20);
  const char* unit_name = in_gib ? "GiB" : "MiB";
  std::vector<int> seq_lens = within({512, 2048, 8192, 32768}, context_len);
  if (seq_lens.back() != context_len && context_len > seq_lens.back()) seq_lens.push_back(context_len);
  const std::vector<int> kv_batches{1, 2, 4, 8, 16, 32, 64, 128, 256};

  // 5: generating N tokens after a prompt of P, with the KV cache and recomputing the context.
  const int new_tokens = std::min(gpu ? 64 : 32, context_len - prompt_len - 2);
  log << "loom bench --report: " << new_tokens << " tokens with and without the KV cache\n";
  std::vector<double> cached_ms, recompute_ms;
  {
    prefill_seconds(engine, prompt_len, vocab, ++seed);  // warm-up
    const std::vector<Request> one =
        random_requests(1, {prompt_len, prompt_len}, {new_tokens, new_tokens}, vocab, ++seed, greedy);
    const std::uint64_t generated = engine.stats().generated_tokens;
    const auto start = Clock::now();
    engine.submit(one[0]);
    while (engine.has_unfinished()) {
      step_checked(engine);
      const std::uint64_t now = engine.stats().generated_tokens - generated;
      while (cached_ms.size() < now) cached_ms.push_back(seconds_since(start) * 1e3);
    }
    double total = 0;
    for (int k = 0; k < new_tokens; ++k) {  // other tokens each time: no prefix-cache hit
      total += prefill_seconds(engine, prompt_len + k, vocab, ++seed);
      recompute_ms.push_back(total * 1e3);
    }
  }

  // The report.
  const std::string title = model.describe();
  std::string md = "# Loom bench report\n\n**Model and device**: " + title + ".  \n**Config**: `" +
                   context.config_file + "`; context " + std::to_string(context_len) + " tokens, max_num_seqs " +
                   std::to_string(max_seqs) + ".  \n**Command**: `" + context.command +
                   "`\n\nEvery figure is measured in this run on random token ids (greedy, EOS ignored), except "
                   "section 4, which is computed from the model's shape.\n\n";
  md += "## 1. Where a decode step's time goes, by batch size\n\n" + std::to_string(prompt_len) + "-token prompts, " +
        std::to_string(decode_tokens) + " decode steps timed after the prefills. " +
        (gpu ? "Phases are timed with CUDA events in an eager run and split the device time of a run with CUDA "
               "graphs, as served; host is the rest of the wall time (scheduling, block tables, uploads, "
               "sampling decisions on the host)."
             : "Phases are timed with the host clock inside the CPU runner; host is the rest of the wall time "
               "(scheduling, block tables, the engine's own work).") +
        "\n\n" + share_table("batch", batches, by_batch) + "\n![step time by batch size](step_phases_by_batch.svg)\n\n";
  md += "## 2. Where a decode step's time goes, by context length\n\n" + std::to_string(context_batch) +
        " sequences of each prompt length, " + std::to_string(decode_tokens) + " decode steps timed.\n\n" +
        share_table("context", contexts, by_context) + "\n![step time by context](step_phases_by_context.svg)\n\n";
  md +=
      "## 3. Prefill latency by prompt length\n\nOne prompt alone, submit to first token, median of three after "
      "a warm-up.\n\n| prompt tokens | latency ms | prompt tokens/s |\n|---|---|---|\n";
  for (std::size_t i = 0; i < lengths.size(); ++i)
    md += "| " + std::to_string(lengths[i]) + " | " + format("%.2f", prefill_ms[i]) + " | " +
          format("%.0f", lengths[i] / (prefill_ms[i] / 1e3)) + " |\n";
  md += "\n![prefill latency](prefill_latency.svg)\n\n";
  md += "## 4. KV-cache memory by batch size and sequence length\n\n" + format("%.1f", kv_per_token / 1024) +
        " KiB per token (2 x " + std::to_string(shape.num_layers) + " layers x " + std::to_string(shape.num_kv_heads) +
        " KV heads x " + std::to_string(shape.head_dim) + " x " + std::to_string(shape.kv_bytes_per_element) +
        " bytes), next to " + format_byte_size(model.weight_bytes()) + " of weights read per step.\n\n| batch |";
  for (int s : seq_lens) md += " " + std::to_string(s) + " tokens |";
  md += "\n|---|";
  for (std::size_t i = 0; i < seq_lens.size(); ++i) md += "---|";
  md += "\n";
  for (int b : kv_batches) {
    md += "| " + std::to_string(b) + " |";
    for (int s : seq_lens)
      md.append(" ").append(format_byte_size(static_cast<std::uint64_t>(kv_per_token * s * b))).append(" |");
    md += "\n";
  }
  md += "\n![KV-cache memory](kv_memory.svg)\n\n";
  md += "## 5. Generating with and without the KV cache\n\n" + std::to_string(new_tokens) + " tokens after a " +
        std::to_string(prompt_len) +
        "-token prompt. With the cache each step computes one token; without it, each token is the prefill of "
        "the whole context so far (measured: one prompt of each length, no prefix-cache hit).\n\n"
        "| | time for " +
        std::to_string(new_tokens) +
        " tokens | KV memory at the end |\n|---|---|---|\n"
        "| with the KV cache | " +
        format("%.1f ms", cached_ms.empty() ? 0 : cached_ms.back()) + " | " +
        format_byte_size(static_cast<std::uint64_t>(kv_per_token * (prompt_len + new_tokens))) +
        " |\n"
        "| recomputing | " +
        format("%.1f ms", recompute_ms.empty() ? 0 : recompute_ms.back()) +
        " | none kept (each step's K and V are dropped) |\n\n![with and without the KV "
        "cache](kv_cache_vs_recompute.svg)\n";

  write_text(dir / "report.md", md);
  write_text(dir / "step_phases_by_batch.svg",
             svg_stacked_bars(share_bars("Share of a decode step's time, by batch size", "sequences in the batch",
                                         batches, by_batch)));
  write_text(dir / "step_phases_by_context.svg",
             svg_stacked_bars(share_bars("Share of a decode step's time, by context length",
                                         "context tokens per sequence", contexts, by_context)));
  LineChart prefill{"Prefill latency", "prompt tokens", "ms", true, true, {{"one prompt", {}, {}}}};
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    prefill.series[0].x.push_back(lengths[i]);
    prefill.series[0].y.push_back(prefill_ms[i]);
  }
  write_text(dir / "prefill_latency.svg", svg_line_chart(prefill));
  LineChart memory{"KV-cache memory", "sequences in the batch", unit_name, true, true, {}};
  for (int s : seq_lens) {
    ChartSeries series{std::to_string(s) + " tokens each", {}, {}};
    for (int b : kv_batches) {
      series.x.push_back(b);
      series.y.push_back(kv_per_token * s * b / unit);
    }
    memory.series.push_back(series);
  }
  memory.series.push_back({"weights", {1.0, 256.0}, {weight_bytes / unit, weight_bytes / unit}, true});
  write_text(dir / "kv_memory.svg", svg_line_chart(memory));
  LineChart cost{"Time to generate, with and without the KV cache", "tokens generated", "ms", false, false, {}};
  ChartSeries with{"with the KV cache", {}, cached_ms}, without{"recomputing the context", {}, recompute_ms};
  for (std::size_t i = 0; i < cached_ms.size(); ++i) with.x.push_back(static_cast<double>(i + 1));
  for (std::size_t i = 0; i < recompute_ms.size(); ++i) without.x.push_back(static_cast<double>(i + 1));
  cost.series = {with, without};
  write_text(dir / "kv_cache_vs_recompute.svg", svg_line_chart(cost));

  json["decode_by_batch"] = shares_json("batch", batches, by_batch);
  json["decode_by_context"] = shares_json("context", contexts, by_context);
  json["prefill"] = Json::array();
  for (std::size_t i = 0; i < lengths.size(); ++i)
    json["prefill"].push_back({{"prompt_tokens", lengths[i]}, {"latency_ms", prefill_ms[i]}});
  json["kv_bytes_per_token"] = kv_per_token;
  json["weight_bytes"] = model.weight_bytes();
  json["generation"] = {{"prompt_tokens", prompt_len},
                        {"new_tokens", new_tokens},
                        {"with_kv_cache_ms", cached_ms},
                        {"recompute_ms", recompute_ms}};
  write_text(dir / "report.json", json.dump(2) + "\n");
}

}  // namespace loom::cli
