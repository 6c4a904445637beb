#include "tools/loom/ab_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <span>

#include <nlohmann/json.hpp>

#include "loom/error.h"

namespace loom::cli {

namespace {

struct Spread {
  double mean = 0, min = 0, max = 0;
};

Spread spread(const ArmSeries& arm, const std::function<double(const ArmResult&)>& metric) {
  Spread s{0, INFINITY, -INFINITY};
  for (const ArmResult& run : arm.runs) {
    const double v = metric(run);
    s.mean += v / arm.runs.size();
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  return s;
}

// The headline: the share of prompt tokens served (prefix cache, a connector's loads) instead of computed.
double hit_rate(const ArmResult& r) { return r.summary.served_prompt_fraction(); }
// Hits over lookups. Lookups stop at a request's first miss, so this depends on the policy's
// own misses and is not comparable on its own; shown for completeness.
double lookup_hit_rate(const ArmResult& r) { return r.lookup_blocks ? double(r.hit_blocks) / r.lookup_blocks : 0.0; }

std::string cell(const Spread& s, const char* format, bool show_range) {
  char text[96];
  std::snprintf(text, sizeof text, format, s.mean);
  std::string out = text;
  if (show_range && s.max > s.min) {
    std::snprintf(text, sizeof text, (std::string(" [") + format + ", " + format + "]").c_str(), s.min, s.max);
    out += text;
  }
  return out;
}

struct Row {
  std::string label;
  const char* format;
  std::function<double(const ArmResult&)> metric;
};

std::vector<Row> rows(const std::string& clock) {
  return {
      {"requests failed", "%.0f", [](const ArmResult& r) { return double(r.summary.failed); }},
      {"prefix hit rate (tokens)", "%.3f", hit_rate},
      {"hits per block lookup", "%.3f", lookup_hit_rate},
      {"prefill tokens computed", "%.0f", [](const ArmResult& r) { return double(r.summary.computed_prompt_tokens); }},
      {"prefill tokens loaded (connector)", "%.0f", [](const ArmResult& r) { return double(r.summary.loaded_tokens); }},
      {"evictions", "%.0f", [](const ArmResult& r) { return double(r.summary.evictions); }},
      {"preemptions", "%.0f", [](const ArmResult& r) { return double(r.summary.preemptions); }},
      {"TTFT p50 ms (" + clock + ")", "%.1f", [](const ArmResult& r) { return r.summary.ttft_ms.p50; }},
      {"TTFT p90 ms (" + clock + ")", "%.1f", [](const ArmResult& r) { return r.summary.ttft_ms.p90; }},
      {"latency p50 ms (" + clock + ")", "%.1f", [](const ArmResult& r) { return r.summary.e2e_ms.p50; }},
      {"latency p90 ms (" + clock + ")", "%.1f", [](const ArmResult& r) { return r.summary.e2e_ms.p90; }},
      {"throughput tok/s (real)", "%.0f", [](const ArmResult& r) { return r.summary.total_tokens_per_s(); }},
      {"draft acceptance rate", "%.3f", [](const ArmResult& r) { return r.summary.acceptance_rate(); }},
      {"tokens per verify step", "%.2f", [](const ArmResult& r) { return r.summary.tokens_per_verify(); }},
  };
}

// The tiers some run of `arms` loaded from (RunSummary::loaded_by_tier), in first-seen order.
std::vector<std::string> tiers_of(std::span<const ArmSeries> arms) {
  std::vector<std::string> tiers;
  for (const ArmSeries& arm : arms)
    for (const ArmResult& run : arm.runs)
      for (const auto& [tier, tokens] : run.summary.loaded_by_tier())
        if (std::find(tiers.begin(), tiers.end(), tier) == tiers.end()) tiers.push_back(tier);
  return tiers;
}

// A tier's share of a run's prompt tokens.
std::function<double(const ArmResult&)> tier_share(const std::string& tier) {
  return [tier](const ArmResult& r) {
    for (const auto& [name, tokens] : r.summary.loaded_by_tier())
      if (name == tier && r.summary.prompt_tokens > 0) return double(tokens) / r.summary.prompt_tokens;
    return 0.0;
  };
}

// The rows, then each tier's share of the prompt tokens beside the token hit rate.
std::vector<Row> rows_for(std::span<const ArmSeries> arms, const char* clock) {
  std::vector<Row> all = rows(clock);
  for (const std::string& tier : tiers_of(arms)) all.push_back({"  of it loaded: " + tier, "%.3f", tier_share(tier)});
  return all;
}


std::string svg_plot(const std::vector<ArmSeries>& arms, const std::string& clock) {
  // Two panels of bars, one bar per arm: hit rate (0..1) and TTFT p50; whiskers show the seeds' range.
  const int width = 720, height = 320, panel_w = 320, top = 50, bottom = 260;
  const char* colours[] = {"#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"};
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n"
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  auto panel = [&](int x0, const char* title, const std::function<double(const ArmResult&)>& metric, bool unit_scale) {
    double top_value = unit_scale ? 1.0 : 0.0;
    for (const auto& arm : arms) top_value = std::max(top_value, spread(arm, metric).max);
    if (top_value <= 0) top_value = 1;
    top_value *= 1.1;  // headroom for the labels under the title
    svg += "<text x=\"" + std::to_string(x0 + panel_w / 2) + "\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">" +
           title + "</text>\n";
    svg += "<line x1=\"" + std::to_string(x0) + "\" y1=\"" + std::to_string(bottom) + "\" x2=\"" +
           std::to_string(x0 + panel_w) + "\" y2=\"" + std::to_string(bottom) + "\" stroke=\"black\"/>\n";
    const int slot = panel_w / static_cast<int>(arms.size());
    for (std::size_t i = 0; i < arms.size(); ++i) {
      const Spread s = spread(arms[i], metric);
      auto y_of = [&](double v) { return bottom - (bottom - top) * v / top_value; };
      const int x = x0 + static_cast<int>(i) * slot + slot / 5, w = slot * 3 / 5;
      char text[512];
      std::snprintf(text, sizeof text,
                    "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"/>\n"
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"black\"/>\n"
                    "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\">%.3g</text>\n"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                    x, y_of(s.mean), w, bottom - y_of(s.mean), colours[i % 6], x + w / 2, y_of(s.min), x + w / 2,
                    y_of(s.max), x + w / 2 + w / 4, y_of(s.mean) - 6, s.mean, x + w / 2, bottom + 18, arms[i].name.c_str());
      svg += text;
    }
  };
  panel(30, "prompt tokens from the prefix cache, higher is better", hit_rate, true);
  const std::string ttft_title = "TTFT p50 (" + clock + " ms), lower is better";
  panel(390, ttft_title.c_str(), [](const ArmResult& r) { return r.summary.ttft_ms.p50; }, false);
  svg += "</svg>\n";
  return svg;
}

}  // namespace

void print_ab_table(std::ostream& out, const std::vector<ArmSeries>& arms, const char* clock) {
  char text[128];
  std::snprintf(text, sizeof text, "%-28s", "");
  out << text;
  for (const auto& arm : arms) {
    std::snprintf(text, sizeof text, "%22s", arm.name.c_str());
    out << text;
  }
  out << "\n";
  for (const Row& row : rows_for(arms, clock)) {
    std::snprintf(text, sizeof text, "%-28s", row.label.c_str());
    out << text;
    for (const auto& arm : arms) {
      std::snprintf(text, sizeof text, "%22s", cell(spread(arm, row.metric), row.format, false).c_str());
      out << text;
    }
    out << "\n";
  }
  std::snprintf(text, sizeof text, "%-28s", "outputs identical to first");
  out << text;
  for (const auto& arm : arms) {
    std::snprintf(text, sizeof text, "%22s", arm.outputs_identical ? "yes" : "NO");
    out << text;
  }
  out << "\n";
  for (const auto& arm : arms)
    if (const std::string why = not_comparable(arm); !why.empty()) out << "NOT COMPARABLE: " << arm.name << ": " << why << "\n";
}

std::string not_comparable(const ArmSeries& arm) {
  Failures all;
  for (const ArmResult& r : arm.runs) all.merge(r.failures);
  if (all.failed == 0) return "";
  return std::to_string(all.failed) + " of " + std::to_string(all.requests) +
         " requests failed, so latencies and rates leave them out (the first, " + all.first_id + ": " +
         all.first_error + ")";
}

void write_ab_report(const std::filesystem::path& dir, const AbContext& context, const std::vector<ArmSeries>& arms) {
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json json;
  json["workload"] = context.workload;
  json["model"] = context.model;
  if (context.cost.measured)
    json["clock"] = "measured";
  else
    json["step_cost"] = {{"step_ms", context.cost.step_ms}, {"token_ms", context.cost.token_ms}};
  json["seeds"] = context.seeds;
  for (const auto& arm : arms) {
    auto mean = [&](const std::function<double(const ArmResult&)>& m) { return spread(arm, m).mean; };
    nlohmann::ordered_json a;
    a["name"] = arm.name;
    a["prefix_hit_rate"] = mean(hit_rate);  // share of prompt tokens served from the cache
    a["block_lookup_hit_rate"] = mean(lookup_hit_rate);
    a["recomputed_prefill_tokens"] = mean([](const ArmResult& r) { return double(r.summary.computed_prompt_tokens); });
    a["loaded_prefill_tokens"] = mean([](const ArmResult& r) { return double(r.summary.loaded_tokens); });
    for (const std::string& tier : tiers_of({&arm, 1}))
      a["prefix_hit_rate_" + tier] = mean(tier_share(tier));  // per tier, beside the total
    a["evictions"] = mean([](const ArmResult& r) { return double(r.summary.evictions); });
    a["preemptions"] = mean([](const ArmResult& r) { return double(r.summary.preemptions); });
    a["throughput_tok_s"] = mean([](const ArmResult& r) { return r.summary.total_tokens_per_s(); });
    a["output_tok_s"] = mean([](const ArmResult& r) { return r.summary.output_tokens_per_s(); });
    for (const char* which : {"ttft_ms", "e2e_ms"}) {
      const bool ttft = std::string(which) == "ttft_ms";
      auto p = [&](double Percentiles::*field) {
        return mean([&](const ArmResult& r) { return (ttft ? r.summary.ttft_ms : r.summary.e2e_ms).*field; });
      };
      a[which] = {{"p50", p(&Percentiles::p50)}, {"p90", p(&Percentiles::p90)}, {"p99", p(&Percentiles::p99)}};
    }
    a["outputs_identical"] = arm.outputs_identical;
    a["comparable"] = not_comparable(arm).empty();
    nlohmann::ordered_json per_seed = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < arm.runs.size(); ++i)
      per_seed.push_back({{"seed", context.seeds[i]}, {"prefix_hit_rate", hit_rate(arm.runs[i])},
                          {"ttft_p50_ms", arm.runs[i].summary.ttft_ms.p50}});
    a["per_seed"] = per_seed;
    // Each request of the first seed: which turns gained (by prompt length, say) is read here.
    nlohmann::ordered_json requests = nlohmann::ordered_json::array();
    for (const auto& [key, t] : arm.runs.front().timings)
      requests.push_back({{"id", key}, {"prompt_tokens", t.prompt_tokens}, {"ttft_ms", t.ttft_ms}});
    a["requests"] = requests;
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (const auto& [name, value] : arm.runs.front().summary.connector_counts) counts[name] = value;
    if (!counts.empty()) a["kv_connector"] = counts;  // the first seed's, as `loom bench --json` shows them
    json["arms"].push_back(a);
  }
  std::ofstream(dir / "report.json") << json.dump(2) << "\n";
  std::ofstream(dir / "plot.svg") << svg_plot(arms, context.cost.clock_name());

  std::ofstream md(dir / "report.md");
  md << "# loom ab\n\nWorkload: `" << context.workload << "`; model: `" << context.model << "`; "
     << context.seeds.size() << " seed(s). ";
  if (context.cost.measured)
    md << "Latencies are on the measured clock (each step takes the time it took; idle gaps between arrivals "
          "are skipped), so they include this machine's speed and noise.\n\n";
  else
    md << "Latencies are on a virtual clock (each step costs " << context.cost.step_ms << " ms + "
       << context.cost.token_ms << " ms per token computed), so they depend only on the policies' decisions; "
       << "throughput is real.\n\n";
  md
     << "Values are means over the seeds, with [min, max] when they differ.\n\n| metric |";
  for (const auto& arm : arms) md << " " << arm.name << " |";
  md << "\n|---|";
  for (std::size_t i = 0; i < arms.size(); ++i) md << "---|";
  md << "\n";
  for (const Row& row : rows_for(arms, context.cost.clock_name())) {
    md << "| " << row.label << " |";
    for (const auto& arm : arms) md << " " << cell(spread(arm, row.metric), row.format, true) << " |";
    md << "\n";
  }
  md << "| outputs identical to the first |";
  for (const auto& arm : arms) md << " " << (arm.outputs_identical ? "yes" : "**no**") << " |";
  md << "\n";
  for (const auto& arm : arms)
    if (const std::string why = not_comparable(arm); !why.empty())
      md << "\n**Not comparable: " << arm.name << "**: " << why << ".\n";
  md << "\n![hit rate and TTFT per configuration](plot.svg)\n";
  if (!md) throw Error("cannot write the report into " + dir.string());
}

}  // namespace loom::cli
