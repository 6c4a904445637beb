// GET /metrics: Prometheus text exposition (format 0.0.4) of what the server and the engine did,
// named as vLLM names them with Loom's prefix (loom:num_requests_running, ...), every series
// labelled with the served model's name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/engine/engine.h"

namespace loom::serve {

// A cumulative histogram: counts of observations <= each bound, their sum and number.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  void write(std::string& out, const std::string& name, const std::string& help, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bound, not cumulative; cumulated when written
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Per finished request: latencies and finish reasons. Owned by the engine loop's thread.
struct RequestMetrics {
  RequestMetrics();
  void record(const RequestResult& result);

  Histogram ttft, tpot, e2e, prompt_tokens, generation_tokens;
  std::map<std::string, std::uint64_t> finished;  // by finish reason
};

// The engine's state when the metrics were asked for.
struct EngineGauges {
  std::size_t running = 0;
  std::size_t waiting = 0;
  EngineStats stats;
};

std::string prometheus_text(const RequestMetrics& requests, const EngineGauges& engine, const std::string& model);

}  // namespace loom::serve
