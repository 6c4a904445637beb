#include "tools/loom/run_summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace loom::cli {

Percentiles percentiles(std::vector<double> values) {
  Percentiles p;
  if (values.empty()) return p;
  std::sort(values.begin(), values.end());
  auto rank = [&](double q) {
    std::size_t i = static_cast<std::size_t>(std::ceil(q * values.size()));
    return values[std::min(values.size() - 1, i == 0 ? 0 : i - 1)];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  return p;
}

RunSummary summarize(const std::vector<RequestResult>& results, const EngineStats& stats, double wall_s) {
  RunSummary s;
  s.wall_s = wall_s;
  std::vector<double> ttft, tpot, e2e;
  for (const RequestResult& r : results) {
    ++s.requests;
    if (r.finish_reason == "error") {
      ++s.failed;
      continue;
    }
    s.prompt_tokens += r.prompt_tokens;
    s.generated_tokens += r.token_ids.size();
    e2e.push_back((r.finish_s - r.arrival_s) * 1e3);
    if (r.first_token_s >= 0) ttft.push_back((r.first_token_s - r.arrival_s) * 1e3);
    if (r.token_ids.size() >= 2) tpot.push_back((r.finish_s - r.first_token_s) * 1e3 / (r.token_ids.size() - 1));
  }
  s.ttft_ms = percentiles(ttft);
  s.tpot_ms = percentiles(tpot);
  s.e2e_ms = percentiles(e2e);
  s.computed_prompt_tokens = stats.computed_prompt_tokens;
  s.loaded_tokens = stats.loaded_tokens;
  s.connector_counts = stats.connector_counts;
  s.prefix_hit_rate = stats.kv.lookup_blocks ? double(stats.kv.hit_blocks) / stats.kv.lookup_blocks : 0.0;
  s.preemptions = stats.preemptions;
  s.computed_tokens = stats.batched_tokens;
  s.recomputed_tokens = stats.recomputed_tokens;
  s.evictions = stats.kv.evictions;
  s.num_blocks = stats.num_blocks;
  s.block_size = stats.block_size;
  s.draft_tokens = stats.draft_tokens;
  s.accepted_draft_tokens = stats.accepted_draft_tokens;
  s.verify_rows = stats.verify_rows;
  return s;
}

std::uint64_t RunSummary::connector_count(const std::string& name) const {
  for (const auto& [n, value] : connector_counts)
    if (n == name) return value;
  return 0;
}

std::vector<std::pair<std::string, std::uint64_t>> RunSummary::loaded_by_tier() const {
  constexpr std::string_view kSuffix = "_loaded_tokens";
  std::vector<std::pair<std::string, std::uint64_t>> tiers;
  for (const auto& [name, value] : connector_counts)
    if (name.size() > kSuffix.size() && name.ends_with(kSuffix))
      tiers.emplace_back(name.substr(0, name.size() - kSuffix.size()), value);
  return tiers;
}

void print_summary(std::ostream& out, const RunSummary& s) {
  char line[256];
  auto emit = [&](const char* format, auto... args) {
    std::snprintf(line, sizeof line, format, args...);
    out << line << "\n";
  };
  if (s.skipped_lines > 0)
    emit("requests        %zu (%zu failed); %zu input lines skipped", s.requests, s.failed, s.skipped_lines);
  else
    emit("requests        %zu (%zu failed)", s.requests, s.failed);
  // The prompt count is of the requests that finished. Computed prompt tokens are fewer when KV
  // was shared (prefix cache, a KV connector's loads, samples forked from sample 0), more when
  // preemption recomputed some or requests that failed had their prompts computed.
  const char* how = s.computed_prompt_tokens < s.prompt_tokens ? "the rest shared: prefix cache, loaded KV, forked samples"
                    : s.computed_prompt_tokens == s.prompt_tokens ? "none shared"
                    : s.failed > 0 ? "more: recomputed after preemption, and prompts of requests that failed"
                                   : "more: recomputed after preemption";
  emit("tokens          %llu prompt (%llu computed, %s), %llu generated", (unsigned long long)s.prompt_tokens,
       (unsigned long long)s.computed_prompt_tokens, how, (unsigned long long)s.generated_tokens);
  emit("time            %.2f s", s.wall_s);
  emit("throughput      %.1f output tokens/s, %.1f total tokens/s", s.output_tokens_per_s(), s.total_tokens_per_s());
  emit("TTFT ms         p50 %.1f  p90 %.1f  p99 %.1f", s.ttft_ms.p50, s.ttft_ms.p90, s.ttft_ms.p99);
  emit("TPOT ms         p50 %.2f  p90 %.2f  p99 %.2f", s.tpot_ms.p50, s.tpot_ms.p90, s.tpot_ms.p99);
  emit("latency ms      p50 %.1f  p90 %.1f  p99 %.1f", s.e2e_ms.p50, s.e2e_ms.p90, s.e2e_ms.p99);
  emit("KV cache        %llu blocks of %u tokens; prefix hit rate %.1f%%; %llu evictions; %llu preemptions",
       (unsigned long long)s.num_blocks, s.block_size, 100.0 * s.prefix_hit_rate, (unsigned long long)s.evictions,
       (unsigned long long)s.preemptions);
  if (s.loaded_tokens > 0) {
    std::string tiers;
    for (const auto& [tier, tokens] : s.loaded_by_tier()) {
      if (s.prompt_tokens == 0) break;
      char part[96];
      std::snprintf(part, sizeof part, "%s%s %.1f%%", tiers.empty() ? "" : ", ", tier.c_str(),
                    100.0 * double(tokens) / double(s.prompt_tokens));
      tiers += part;
    }
    emit("KV loaded       %llu prompt tokens from the kv_connector instead of computing them%s%s%s",
         (unsigned long long)s.loaded_tokens, tiers.empty() ? "" : " (of the prompt tokens: ", tiers.c_str(),
         tiers.empty() ? "" : ")");
  }
  for (const char* way : {"in", "out"}) {
    const std::uint64_t bytes = s.connector_count(std::string("copied_") + way + "_bytes");
    const std::uint64_t ns = s.connector_count(std::string("copy_") + way + "_ns");
    const std::uint64_t peak = s.connector_count(std::string("peak_") + way + "_mb_per_s");
    if (bytes == 0 || ns == 0) continue;
    const double gb_per_s = double(bytes) / double(ns);
    char against[96] = "";
    if (peak > 0)
      std::snprintf(against, sizeof against, " (%.0f%% of the %.1f GB/s measured at start-up)",
                    100.0 * gb_per_s * 1e3 / double(peak), double(peak) / 1e3);
    emit("KV copies %-5s %.1f MB at %.1f GB/s%s", way, double(bytes) / 1e6, gb_per_s, against);
  }
  if (s.recomputed_tokens > 0)
    emit("recomputed      %llu of %llu computed tokens (%.2f%%), computed before a preemption or failed step",
         (unsigned long long)s.recomputed_tokens, (unsigned long long)s.computed_tokens, 100.0 * s.recomputed_fraction());
  if (s.verify_rows > 0)
    emit("speculative     %llu of %llu draft tokens accepted (%.1f%%); %.2f tokens per verifying step of a sequence",
         (unsigned long long)s.accepted_draft_tokens, (unsigned long long)s.draft_tokens, 100.0 * s.acceptance_rate(),
         s.tokens_per_verify());
}

void Failures::add(const std::vector<RequestResult>& results) {
  for (const RequestResult& r : results) {
    ++requests;
    if (r.finish_reason != "error") continue;
    if (failed++ == 0) {
      first_id = r.id;
      first_error = r.error;
    }
  }
}

void Failures::merge(const Failures& other) {
  if (failed == 0 && other.failed > 0) {
    first_id = other.first_id;
    first_error = other.first_error;
  }
  failed += other.failed;
  requests += other.requests;
}

int exit_code_for_failures(const Failures& failures, bool accept_failures, const char* command, std::ostream& log) {
  if (failures.failed == 0) return 0;
  log << "loom " << command << ": " << failures.failed << " of " << failures.requests
      << " requests failed; the first, " << failures.first_id << ": " << failures.first_error << "\n";
  if (accept_failures) return 0;
  log << "loom " << command << ": exit code " << kFailedRequestsExitCode
      << " because requests failed (--accept-failures exits 0)\n";
  return kFailedRequestsExitCode;
}

}  // namespace loom::cli
