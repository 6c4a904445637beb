#include "tools/loom/serve/server_metrics.h"

#include <algorithm>
#include <cstdio>

namespace loom::serve {

namespace {

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

// Label values are quoted; a backslash, quote or newline in one is escaped.
std::string label(const std::string& key, const std::string& value) {
  std::string out = key + "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

void head(std::string& out, const std::string& name, const std::string& type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, const std::string& labels, double value) {
  out += name + "{" + labels + "} " + number(value) + "\n";
}

void gauge(std::string& out, const std::string& name, const std::string& help, const std::string& labels,
           double value) {
  head(out, name, "gauge", help);
  sample(out, name, labels, value);
}

void counter(std::string& out, const std::string& name, const std::string& help, const std::string& labels,
             double value) {
  head(out, name, "counter", help);
  sample(out, name, labels, value);
}

// Seconds: 1 ms .. 80 s; token counts: 1 .. 32k.
std::vector<double> latency_bounds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> token_bounds() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 32768};
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  if (static_cast<std::size_t>(bucket) < counts_.size()) ++counts_[static_cast<std::size_t>(bucket)];
  sum_ += value;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help,
                      const std::string& labels) const {
  head(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    sample(out, name + "_bucket", labels + "," + label("le", number(bounds_[i])), static_cast<double>(cumulative));
  }
  sample(out, name + "_bucket", labels + "," + label("le", "+Inf"), static_cast<double>(count_));
  sample(out, name + "_sum", labels, sum_);
  sample(out, name + "_count", labels, static_cast<double>(count_));
}

RequestMetrics::RequestMetrics()
    : ttft(latency_bounds()),
      tpot(latency_bounds()),
      e2e(latency_bounds()),
      prompt_tokens(token_bounds()),
      generation_tokens(token_bounds()) {}

void RequestMetrics::record(const RequestResult& r) {
  ++finished[r.finish_reason];
  e2e.observe(r.finish_s - r.arrival_s);
  prompt_tokens.observe(static_cast<double>(r.prompt_tokens));
  generation_tokens.observe(static_cast<double>(r.token_ids.size()));
  if (r.first_token_s >= 0) ttft.observe(r.first_token_s - r.arrival_s);
  if (r.token_ids.size() > 1)
    tpot.observe((r.finish_s - r.first_token_s) / static_cast<double>(r.token_ids.size() - 1));
}

std::string prometheus_text(const RequestMetrics& requests, const EngineGauges& engine, const std::string& model) {
  const std::string labels = label("model_name", model);
  const EngineStats& s = engine.stats;
  std::string out;
  gauge(out, "loom:num_requests_running", "Samples being generated (their KV partly computed).", labels,
        static_cast<double>(engine.running));
  gauge(out, "loom:num_requests_waiting", "Samples waiting to be scheduled, preempted ones included.", labels,
        static_cast<double>(engine.waiting));
  gauge(out, "loom:kv_blocks_total", "KV blocks in the pool.", labels, static_cast<double>(s.kv.num_blocks));
  gauge(out, "loom:kv_blocks_used", "KV blocks referenced by a sequence.", labels,
        static_cast<double>(s.kv.used_blocks));
  gauge(out, "loom:kv_blocks_cached", "KV blocks unreferenced but kept for prefix reuse.", labels,
        static_cast<double>(s.kv.cached_blocks));
  gauge(out, "loom:kv_cache_usage_perc", "Fraction of the KV pool in use (0 to 1).", labels,
        s.kv.num_blocks ? static_cast<double>(s.kv.used_blocks) / static_cast<double>(s.kv.num_blocks) : 0.0);
  counter(out, "loom:prefix_cache_queries_total", "Full KV blocks looked up in the prefix cache.", labels,
          static_cast<double>(s.kv.lookup_blocks));
  counter(out, "loom:prefix_cache_hits_total", "Of those, found.", labels, static_cast<double>(s.kv.hit_blocks));
  gauge(out, "loom:prefix_cache_hit_rate", "prefix_cache_hits_total / prefix_cache_queries_total.", labels,
        s.kv.lookup_blocks ? static_cast<double>(s.kv.hit_blocks) / static_cast<double>(s.kv.lookup_blocks) : 0.0);
  counter(out, "loom:num_preemptions_total", "Sequences preempted (their KV dropped, recomputed later).", labels,
          static_cast<double>(s.preemptions));
  counter(out, "loom:prompt_tokens_total", "Prompt tokens of finished requests.", labels,
          static_cast<double>(s.prompt_tokens));
  counter(out, "loom:generation_tokens_total", "Tokens generated.", labels, static_cast<double>(s.generated_tokens));
  counter(out, "loom:engine_steps_total", "Engine steps run.", labels, static_cast<double>(s.steps));
  head(out, "loom:request_success_total", "counter", "Finished samples by finish reason.");
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    auto it = requests.finished.find(reason);
    sample(out, "loom:request_success_total", labels + "," + label("finished_reason", reason),
           it == requests.finished.end() ? 0.0 : static_cast<double>(it->second));
  }
  requests.ttft.write(out, "loom:time_to_first_token_seconds", "Time to first token, from arrival.", labels);
  requests.tpot.write(out, "loom:time_per_output_token_seconds", "Mean time per output token after the first.", labels);
  requests.e2e.write(out, "loom:e2e_request_latency_seconds", "Arrival to finish.", labels);
  requests.prompt_tokens.write(out, "loom:request_prompt_tokens", "Prompt tokens per finished sample.", labels);
  requests.generation_tokens.write(out, "loom:request_generation_tokens", "Generated tokens per finished sample.",
                                   labels);
  return out;
}

}  // namespace loom::serve
