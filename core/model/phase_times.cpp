#include "core/model/phase_times.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace loom {

namespace {
std::string_view profile_setting() {
  const char* profile = std::getenv("LOOM_PROFILE");
  return profile ? profile : "";
}
}  // namespace

bool profiling_requested() { return profile_setting() == "1" || profiling_decode_steps_only(); }

bool profiling_decode_steps_only() { return profile_setting() == "decode"; }

std::string phase_table(const PhaseSeconds& seconds, std::uint64_t steps, std::string_view clock) {
  if (seconds.empty()) return "";
  double total = 0;
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [name, s] : seconds) {
    total += s;
    sorted.emplace_back(s, name);
  }
  std::sort(sorted.rbegin(), sorted.rend());
  char line[160];
  std::snprintf(line, sizeof line, "%.*s time by phase over %llu steps (%.2f ms):\n", static_cast<int>(clock.size()),
                clock.data(), static_cast<unsigned long long>(steps), total * 1e3);
  std::string out = line;
  for (const auto& [s, name] : sorted) {
    std::snprintf(line, sizeof line, "  %-22s %9.2f ms  %5.1f%%\n", name.c_str(), s * 1e3,
                  total > 0 ? 100.0 * s / total : 0.0);
    out += line;
  }
  return out;
}

std::string_view phase_category(std::string_view phase) {
  auto has = [&](std::string_view word) { return phase.find(word) != std::string_view::npos; };
  if (has("attention")) return "attention";
  if (has("projection") || has("lm head")) return "GEMMs";
  if (has("argmax") || has("sampl")) return "sampling";
  return "norms and activations";
}

}  // namespace loom
