// Seeded synthetic workloads: request traces with arrival times, for prefix-cache and eviction
// experiments (docs/workloads.md).
//
// A trace is JSONL in the request format of docs/requests.md plus "arrival_time", so
// read_requests() reads it back and a recorded trace in the same schema stands in for a synthetic
// one. Prompts are token ids drawn from [3, vocab_size), so a trace works with any model and needs
// no tokenizer. Each kind shapes how prompts share prefixes:
//   chat           conversations whose turns each extend the previous turn's prompt;
//   system_prompt  a few long system prompts, picked by Zipf popularity, each with its own question;
//   few_shot       a few long few-shot templates, picked uniformly, each with its own question;
//   scan           a hot prefix reused by some requests, interleaved with long one-off prompts
//                  that push it out of an LRU cache.
//
// Everything is a pure function of the spec: the same spec (seed included) gives byte-identical
// output on every platform (own RNG and own log/exp, no <random> distributions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>

namespace loom {

enum class WorkloadKind { chat, system_prompt, few_shot, scan, multi_turn };

// Conversations: turn k's prompt = turn k-1's prompt + an answer stand-in of max_tokens random
// tokens (the real answer is not known when the trace is written) + a new user turn.
struct ChatOptions {
  std::size_t conversations = 16;       // conversations open at any time; a finished one is replaced
  std::size_t max_turns = 6;            // each conversation has 1..max_turns turns (uniform)
  std::int32_t user_tokens_min = 32;    // a user turn has user_tokens_min..user_tokens_max tokens
  std::int32_t user_tokens_max = 96;
};

// Shared system prompts: prompt = system prompt of rank r (chosen with P(r) ~ 1 / (r+1)^zipf_exponent,
// rank 0 the most popular) + a fresh question.
struct SystemPromptOptions {
  std::size_t count = 4;
  std::int32_t tokens = 256;            // length of each system prompt
  double zipf_exponent = 1.1;           // 0 = uniform
  std::int32_t question_tokens_min = 16;
  std::int32_t question_tokens_max = 64;
};

// Few-shot templates: prompt = one template (uniform) + a fresh question.
struct FewShotOptions {
  std::size_t templates = 3;
  std::int32_t template_tokens = 400;
  std::int32_t question_tokens = 32;
};

// Scan resistance: a request is hot with probability hot_fraction (prompt = hot prefix + a fresh
// question), otherwise a one-off prompt of scan_tokens_min..scan_tokens_max tokens whose first
// 16-token block differs from every other prompt's (redrawn on a collision, which only a tiny
// vocabulary makes likely), so one-off prompts never share a cached prefix.
struct ScanOptions {
  std::int32_t hot_prefix_tokens = 256;
  double hot_fraction = 0.5;
  std::int32_t question_tokens = 32;
  std::int32_t scan_tokens_min = 512;
  std::int32_t scan_tokens_max = 1024;
};

// The most lines one trace holds: traces are built in memory before they are written.
inline constexpr std::size_t kMaxWorkloadRequests = 1'000'000;

// Long conversations that come back (an offload tier's workload): turn 0 is a document of
// first_tokens; each later turn appends an answer stand-in of max_tokens and a new user turn of
// turn_tokens_min..turn_tokens_max, until a prompt and its output would pass max_history_tokens; then the
// conversation ends and a new one opens. The open conversations take turns round robin, so each
// returns only after every other has had a turn: a KV pool that cannot hold all their histories
// has evicted a conversation's history by the time it comes back.
struct MultiTurnOptions {
  std::size_t conversations = 8;
  std::int32_t first_tokens = 2048;
  std::int32_t turn_tokens_min = 1024;
  std::int32_t turn_tokens_max = 2048;
  std::int32_t max_history_tokens = 16384;
};

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::chat;
  std::size_t requests = 200;           // lines written: at most kMaxWorkloadRequests
  std::uint64_t seed = 0;
  std::int32_t vocab_size = 32000;      // token ids are drawn from [3, vocab_size); must be >= 4
  double rate = 8.0;                    // mean arrivals per second (Poisson process); must be > 0
  std::int32_t max_tokens = 32;         // output length per request (ignore_eos: exactly this many)
  ChatOptions chat;
  SystemPromptOptions system_prompt;
  FewShotOptions few_shot;
  ScanOptions scan;
  MultiTurnOptions multi_turn;
};

// Shrinks the lengths of `spec` that would not fit a model of `context_length` positions (prompt
// and output together): scans, and multi-turn histories with their turns in proportion.
void fit_to_context(WorkloadSpec& spec, std::int64_t context_length);

// "chat" | "system-prompt" | "few-shot" | "scan" | "multi-turn" (underscores accepted too); nullopt
// otherwise.
std::optional<WorkloadKind> parse_workload_kind(std::string_view name);

// The name parse_workload_kind accepts for `kind`, e.g. "system-prompt".
std::string_view workload_kind_name(WorkloadKind kind);

// Writes spec.requests lines, one JSON object each, in arrival order:
//   {"id":"chat-c3-t1","prompt_token_ids":[...],"max_tokens":32,"ignore_eos":true,
//    "arrival_time":0.731215,"temperature":0}
// arrival_time is in seconds from the start, rounded to microseconds, non-decreasing. The id
// tells which group a request belongs to (docs/workloads.md lists the id shapes).
// Throws UsageError when the spec is out of range (rate <= 0, vocab_size < 4, min > max, ...),
// naming the field and the value; writes nothing then.
void write_workload(const WorkloadSpec& spec, std::ostream& out);

}  // namespace loom
