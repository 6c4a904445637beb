#include "core/workloads/prompt_generators.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/workloads/seeded_random.h"

namespace loom::workloads {

namespace {

// Independent random streams: the shared texts do not change with the request count, and the
// per-request choices do not change with the shared texts' lengths.
constexpr std::uint64_t kSharedTextStream = 2;
constexpr std::uint64_t kRequestStream = 3;

void append_tokens(SeededRandom& random, std::int32_t vocab_size, std::int64_t count,
                   std::vector<std::int32_t>& tokens) {
  for (std::int64_t i = 0; i < count; ++i)
    tokens.push_back(static_cast<std::int32_t>(random.between(3, vocab_size - 1)));
}

std::vector<std::int32_t> random_tokens(SeededRandom& random, std::int32_t vocab_size, std::int64_t count) {
  std::vector<std::int32_t> tokens;
  tokens.reserve(static_cast<std::size_t>(count));
  append_tokens(random, vocab_size, count, tokens);
  return tokens;
}

std::string numbered(std::string_view prefix, std::size_t group, std::string_view separator, std::size_t index) {
  std::string id(prefix);
  id.append(std::to_string(group));
  id.append(separator);
  id.append(std::to_string(index));
  return id;
}

std::string indexed(std::string_view prefix, std::size_t index) {
  std::string id(prefix);
  id.append(std::to_string(index));
  return id;
}

struct Conversation {
  std::size_t number = 0;
  std::size_t turns = 0;       // in all
  std::size_t next_turn = 0;
  std::vector<std::int32_t> prompt;  // the last turn's prompt
};

std::vector<TracePrompt> chat(const WorkloadSpec& spec) {
  const ChatOptions& o = spec.chat;
  SeededRandom random = SeededRandom::stream(spec.seed, kRequestStream);
  std::size_t started = 0;
  auto start = [&] {
    Conversation c;
    c.number = started++;
    c.turns = static_cast<std::size_t>(random.between(1, static_cast<std::int64_t>(o.max_turns)));
    return c;
  };
  std::vector<Conversation> open;
  for (std::size_t i = 0; i < o.conversations; ++i) open.push_back(start());

  std::vector<TracePrompt> prompts;
  prompts.reserve(spec.requests);
  for (std::size_t i = 0; i < spec.requests; ++i) {
    auto pick = static_cast<std::size_t>(random.between(0, static_cast<std::int64_t>(open.size()) - 1));
    Conversation& c = open[pick];
    // The previous answer is not known when the trace is written: a stand-in of max_tokens tokens.
    if (c.next_turn > 0) append_tokens(random, spec.vocab_size, spec.max_tokens, c.prompt);
    append_tokens(random, spec.vocab_size, random.between(o.user_tokens_min, o.user_tokens_max), c.prompt);
    prompts.push_back({numbered("chat-c", c.number, "-t", c.next_turn), c.prompt});
    if (++c.next_turn == c.turns) c = start();
  }
  return prompts;
}

std::vector<TracePrompt> multi_turn(const WorkloadSpec& spec) {
  const MultiTurnOptions& o = spec.multi_turn;
  SeededRandom random = SeededRandom::stream(spec.seed, kRequestStream);
  std::vector<Conversation> open(o.conversations);
  std::size_t started = 0;
  for (Conversation& c : open) c.number = started++;

  std::vector<TracePrompt> prompts;
  prompts.reserve(spec.requests);
  for (std::size_t i = 0; i < spec.requests; ++i) {
    Conversation& c = open[i % open.size()];
    const std::int64_t turn = random.between(o.turn_tokens_min, o.turn_tokens_max);
    // The next prompt (history, answer stand-in, new turn) and its own output must fit.
    const auto next_length = static_cast<std::int64_t>(c.prompt.size()) + 2 * spec.max_tokens + turn;
    if (c.next_turn > 0 && next_length > o.max_history_tokens) {
      c = Conversation{};  // the history is as long as it gets: a new conversation takes its place
      c.number = started++;
    }
    if (c.next_turn == 0) {
      append_tokens(random, spec.vocab_size, o.first_tokens, c.prompt);
    } else {
      append_tokens(random, spec.vocab_size, spec.max_tokens, c.prompt);  // the answer's stand-in
      append_tokens(random, spec.vocab_size, turn, c.prompt);
    }
    prompts.push_back({numbered("multi-c", c.number, "-t", c.next_turn), c.prompt});
    ++c.next_turn;
  }
  return prompts;
}

std::vector<TracePrompt> system_prompt(const WorkloadSpec& spec) {
  const SystemPromptOptions& o = spec.system_prompt;
  SeededRandom shared = SeededRandom::stream(spec.seed, kSharedTextStream);
  std::vector<std::vector<std::int32_t>> system_prompts;
  for (std::size_t r = 0; r < o.count; ++r) system_prompts.push_back(random_tokens(shared, spec.vocab_size, o.tokens));

  SeededRandom random = SeededRandom::stream(spec.seed, kRequestStream);
  ZipfSampler popularity(o.count, o.zipf_exponent);
  std::vector<TracePrompt> prompts;
  prompts.reserve(spec.requests);
  for (std::size_t i = 0; i < spec.requests; ++i) {
    std::size_t rank = popularity.draw(random);
    std::vector<std::int32_t> tokens = system_prompts[rank];
    append_tokens(random, spec.vocab_size, random.between(o.question_tokens_min, o.question_tokens_max), tokens);
    prompts.push_back({numbered("sys-p", rank, "-", i), std::move(tokens)});
  }
  return prompts;
}

std::vector<TracePrompt> few_shot(const WorkloadSpec& spec) {
  const FewShotOptions& o = spec.few_shot;
  SeededRandom shared = SeededRandom::stream(spec.seed, kSharedTextStream);
  std::vector<std::vector<std::int32_t>> templates;
  for (std::size_t t = 0; t < o.templates; ++t)
    templates.push_back(random_tokens(shared, spec.vocab_size, o.template_tokens));

  SeededRandom random = SeededRandom::stream(spec.seed, kRequestStream);
  std::vector<TracePrompt> prompts;
  prompts.reserve(spec.requests);
  for (std::size_t i = 0; i < spec.requests; ++i) {
    auto t = static_cast<std::size_t>(random.between(0, static_cast<std::int64_t>(o.templates) - 1));
    std::vector<std::int32_t> tokens = templates[t];
    append_tokens(random, spec.vocab_size, o.question_tokens, tokens);
    prompts.push_back({numbered("fewshot-t", t, "-", i), std::move(tokens)});
  }
  return prompts;
}

std::vector<TracePrompt> scan(const WorkloadSpec& spec) {
  const ScanOptions& o = spec.scan;
  SeededRandom shared = SeededRandom::stream(spec.seed, kSharedTextStream);
  const std::vector<std::int32_t> hot_prefix = random_tokens(shared, spec.vocab_size, o.hot_prefix_tokens);

  // First blocks in use: a one-off prompt whose first block collides is drawn again, so no two
  // prompts of the trace share a cached prefix unless both are hot.
  auto first_block = [](const std::vector<std::int32_t>& tokens) {
    auto end = tokens.begin() + static_cast<std::ptrdiff_t>(std::min(tokens.size(), kScanBlockTokens));
    return std::vector<std::int32_t>(tokens.begin(), end);
  };
  std::set<std::vector<std::int32_t>> first_blocks = {first_block(hot_prefix)};

  SeededRandom random = SeededRandom::stream(spec.seed, kRequestStream);
  std::vector<TracePrompt> prompts;
  prompts.reserve(spec.requests);
  for (std::size_t i = 0; i < spec.requests; ++i) {
    if (random.uniform() < o.hot_fraction) {
      std::vector<std::int32_t> tokens = hot_prefix;
      append_tokens(random, spec.vocab_size, o.question_tokens, tokens);
      prompts.push_back({indexed("scan-hot-", i), std::move(tokens)});
      continue;
    }
    std::int64_t length = random.between(o.scan_tokens_min, o.scan_tokens_max);
    std::vector<std::int32_t> tokens = random_tokens(random, spec.vocab_size, length);
    // A handful of tries at most even for a tiny vocabulary; give up rather than loop forever.
    for (int tries = 0; first_blocks.count(first_block(tokens)) > 0 && tries < 64; ++tries)
      tokens = random_tokens(random, spec.vocab_size, length);
    first_blocks.insert(first_block(tokens));
    prompts.push_back({indexed("scan-once-", i), std::move(tokens)});
  }
  return prompts;
}

}  // namespace

std::vector<TracePrompt> generate_prompts(const WorkloadSpec& spec) {
  switch (spec.kind) {
    case WorkloadKind::chat: return chat(spec);
    case WorkloadKind::system_prompt: return system_prompt(spec);
    case WorkloadKind::few_shot: return few_shot(spec);
    case WorkloadKind::scan: return scan(spec);
    case WorkloadKind::multi_turn: return multi_turn(spec);
  }
  return {};
}

}  // namespace loom::workloads
