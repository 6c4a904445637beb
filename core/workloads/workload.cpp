#include "core/workloads/workload.h"

#include <cmath>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/workloads/prompt_generators.h"
#include "core/workloads/seeded_random.h"
#include "loom/error.h"

namespace loom {

namespace {

// Arrival times come from their own stream, so the prompts do not change with the rate.
constexpr std::uint64_t kArrivalStream = 1;

template <typename T>
void require(bool ok, std::string_view field, std::string_view expected, T value) {
  if (ok) return;
  std::ostringstream message;
  message << "workload: \"" << field << "\" must be " << expected << ", got " << value;
  throw UsageError(message.str());
}

void require_range(std::string_view min_field, std::int32_t min, std::string_view max_field, std::int32_t max) {
  require(min >= 1, min_field, "an integer >= 1", min);
  if (min > max) {
    std::string expected = ">= ";
    expected.append(min_field);
    expected.append(" (");
    expected.append(std::to_string(min));
    expected.push_back(')');
    require(false, max_field, expected, max);
  }
}

void validate(const WorkloadSpec& spec) {
  require(spec.requests <= kMaxWorkloadRequests, "requests", "at most " + std::to_string(kMaxWorkloadRequests),
          spec.requests);
  require(spec.vocab_size >= 4, "vocab_size", "at least 4 (token ids are drawn from [3, vocab_size))",
          spec.vocab_size);
  require(std::isfinite(spec.rate) && spec.rate > 0, "rate", "a number > 0 (arrivals per second)", spec.rate);
  require(spec.max_tokens >= 0, "max_tokens", "an integer >= 0", spec.max_tokens);
  switch (spec.kind) {
    case WorkloadKind::chat:
      require(spec.chat.conversations >= 1, "chat.conversations", "at least 1", spec.chat.conversations);
      require(spec.chat.max_turns >= 1, "chat.max_turns", "at least 1", spec.chat.max_turns);
      require_range("chat.user_tokens_min", spec.chat.user_tokens_min, "chat.user_tokens_max",
                    spec.chat.user_tokens_max);
      break;
    case WorkloadKind::system_prompt:
      require(spec.system_prompt.count >= 1, "system_prompt.count", "at least 1", spec.system_prompt.count);
      require(spec.system_prompt.tokens >= 1, "system_prompt.tokens", "an integer >= 1", spec.system_prompt.tokens);
      require(std::isfinite(spec.system_prompt.zipf_exponent) && spec.system_prompt.zipf_exponent >= 0,
              "system_prompt.zipf_exponent", "a number >= 0", spec.system_prompt.zipf_exponent);
      require(spec.system_prompt.question_tokens_min >= 0, "system_prompt.question_tokens_min", "an integer >= 0",
              spec.system_prompt.question_tokens_min);
      require(spec.system_prompt.question_tokens_max >= spec.system_prompt.question_tokens_min,
              "system_prompt.question_tokens_max", ">= system_prompt.question_tokens_min",
              spec.system_prompt.question_tokens_max);
      break;
    case WorkloadKind::few_shot:
      require(spec.few_shot.templates >= 1, "few_shot.templates", "at least 1", spec.few_shot.templates);
      require(spec.few_shot.template_tokens >= 1, "few_shot.template_tokens", "an integer >= 1",
              spec.few_shot.template_tokens);
      require(spec.few_shot.question_tokens >= 0, "few_shot.question_tokens", "an integer >= 0",
              spec.few_shot.question_tokens);
      break;
    case WorkloadKind::multi_turn:
      require(spec.multi_turn.conversations >= 1, "multi_turn.conversations", "at least 1",
              spec.multi_turn.conversations);
      require(spec.multi_turn.first_tokens >= 1, "multi_turn.first_tokens", "an integer >= 1",
              spec.multi_turn.first_tokens);
      require_range("multi_turn.turn_tokens_min", spec.multi_turn.turn_tokens_min, "multi_turn.turn_tokens_max",
                    spec.multi_turn.turn_tokens_max);
      require(spec.multi_turn.max_history_tokens >= spec.multi_turn.first_tokens + spec.max_tokens,
              "multi_turn.max_history_tokens", ">= multi_turn.first_tokens + max_tokens",
              spec.multi_turn.max_history_tokens);
      break;
    case WorkloadKind::scan:
      require(spec.scan.hot_prefix_tokens >= 1, "scan.hot_prefix_tokens", "an integer >= 1",
              spec.scan.hot_prefix_tokens);
      require(spec.scan.hot_fraction >= 0 && spec.scan.hot_fraction <= 1, "scan.hot_fraction",
              "a number in [0, 1]", spec.scan.hot_fraction);
      require(spec.scan.question_tokens >= 0, "scan.question_tokens", "an integer >= 0", spec.scan.question_tokens);
      require_range("scan.scan_tokens_min", spec.scan.scan_tokens_min, "scan.scan_tokens_max",
                    spec.scan.scan_tokens_max);
      break;
  }
}

}  // namespace

std::optional<WorkloadKind> parse_workload_kind(std::string_view name) {
  for (auto kind : {WorkloadKind::chat, WorkloadKind::system_prompt, WorkloadKind::few_shot, WorkloadKind::scan,
                    WorkloadKind::multi_turn}) {
    std::string_view canonical = workload_kind_name(kind);
    bool same = canonical.size() == name.size();
    for (std::size_t i = 0; same && i < name.size(); ++i)
      same = name[i] == canonical[i] || (name[i] == '_' && canonical[i] == '-');
    if (same) return kind;
  }
  return std::nullopt;
}

std::string_view workload_kind_name(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::chat: return "chat";
    case WorkloadKind::system_prompt: return "system-prompt";
    case WorkloadKind::few_shot: return "few-shot";
    case WorkloadKind::scan: return "scan";
    case WorkloadKind::multi_turn: return "multi-turn";
  }
  return "unknown";
}

void fit_to_context(WorkloadSpec& spec, std::int64_t context_length) {
  const auto longest = static_cast<std::int32_t>(std::max<std::int64_t>(1, context_length - spec.max_tokens - 1));
  spec.scan.scan_tokens_max = std::max(1, std::min(spec.scan.scan_tokens_max, longest));
  spec.scan.scan_tokens_min = std::min(spec.scan.scan_tokens_min, spec.scan.scan_tokens_max);
  MultiTurnOptions& m = spec.multi_turn;
  const auto whole = static_cast<std::int32_t>(std::max<std::int64_t>(1, context_length - 1));  // with the output
  if (m.max_history_tokens > whole) {
    // Histories of the same shape, scaled down: a first turn of about 1/8 of the longest, turns
    // of 1/16 to 1/8.
    m.max_history_tokens = whole;
    m.first_tokens = std::max(1, std::min(m.first_tokens, longest / 8));
    m.turn_tokens_max = std::max(1, std::min(m.turn_tokens_max, longest / 8));
    m.turn_tokens_min = std::max(1, std::min(m.turn_tokens_min, longest / 16));
  }
}

void write_workload(const WorkloadSpec& spec, std::ostream& out) {
  validate(spec);
  std::vector<workloads::TracePrompt> prompts = workloads::generate_prompts(spec);
  auto arrivals = workloads::SeededRandom::stream(spec.seed, kArrivalStream);
  double clock = 0.0;
  for (auto& prompt : prompts) {
    clock += arrivals.exponential(spec.rate);
    // Microseconds are plenty for a trace and keep the lines short; rounding keeps the order.
    double arrival_time = std::round(clock * 1e6) / 1e6;
    nlohmann::ordered_json line;
    line["id"] = std::move(prompt.id);
    line["prompt_token_ids"] = std::move(prompt.tokens);
    line["max_tokens"] = spec.max_tokens;
    line["ignore_eos"] = true;
    line["arrival_time"] = arrival_time;
    line["temperature"] = 0;
    out << line.dump() << '\n';
  }
  out.flush();
  if (!out) throw Error("workload: writing the trace failed");
}

}  // namespace loom
