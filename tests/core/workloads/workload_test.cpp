// Workload traces: every kind reads back as requests, is a pure function of its seed, arrives
// at the asked rate, and shares prefixes the way its kind promises.
#include "core/workloads/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/requests/request_reader.h"
#include "loom/error.h"

namespace loom {
namespace {

constexpr WorkloadKind kAllKinds[] = {WorkloadKind::chat, WorkloadKind::system_prompt, WorkloadKind::few_shot,
                                      WorkloadKind::scan, WorkloadKind::multi_turn};

std::string trace_text(const WorkloadSpec& spec) {
  std::ostringstream out;
  write_workload(spec, out);
  return out.str();
}

std::vector<Request> trace(const WorkloadSpec& spec) {
  std::istringstream in(trace_text(spec));
  ReadResult read = read_requests(in, "trace.jsonl", SamplingParams{}, InputFormat::kJsonl, BadLinePolicy::kSkip);
  for (const BadLine& bad : read.bad_lines) ADD_FAILURE() << bad.message;
  return read.requests;
}

WorkloadSpec spec_of(WorkloadKind kind, std::size_t requests = 200, std::uint64_t seed = 0) {
  WorkloadSpec spec;
  spec.kind = kind;
  spec.requests = requests;
  spec.seed = seed;
  return spec;
}

bool starts_with(const std::vector<std::int32_t>& tokens, const std::vector<std::int32_t>& prefix) {
  return tokens.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), tokens.begin());
}

std::vector<std::int32_t> head(const std::vector<std::int32_t>& tokens, std::size_t n) {
  return {tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(std::min(n, tokens.size()))};
}

// "sys-p2-17" -> 2: the number after `prefix`.
std::size_t group_of(const std::string& id, const std::string& prefix) {
  EXPECT_EQ(id.rfind(prefix, 0), 0u) << id;
  return std::stoul(id.substr(prefix.size()));
}

TEST(Workload, EveryKindReadsBackAsRequests) {
  for (WorkloadKind kind : kAllKinds) {
    SCOPED_TRACE(std::string(workload_kind_name(kind)));
    std::vector<Request> requests = trace(spec_of(kind));
    ASSERT_EQ(requests.size(), 200u);
    for (const Request& r : requests) {
      EXPECT_FALSE(r.prompt_token_ids.empty());
      for (std::int32_t id : r.prompt_token_ids) ASSERT_TRUE(id >= 3 && id < 32000) << r.id << ": " << id;
      EXPECT_EQ(r.params.max_tokens, 32);
      EXPECT_TRUE(r.params.ignore_eos);
      EXPECT_EQ(r.params.temperature, 0.0);
    }
  }
}

TEST(Workload, SameSeedSameBytesOtherSeedOtherTrace) {
  for (WorkloadKind kind : kAllKinds) {
    SCOPED_TRACE(std::string(workload_kind_name(kind)));
    std::string first = trace_text(spec_of(kind, 100, 7));
    EXPECT_EQ(first, trace_text(spec_of(kind, 100, 7)));
    EXPECT_NE(first, trace_text(spec_of(kind, 100, 8)));
  }
}

TEST(Workload, ArrivalTimesAreSortedAndFollowTheRate) {
  WorkloadSpec spec = spec_of(WorkloadKind::few_shot, 2000);
  spec.rate = 8.0;
  std::vector<Request> requests = trace(spec);
  ASSERT_EQ(requests.size(), 2000u);
  EXPECT_GE(requests.front().arrival_time, 0.0);
  for (std::size_t i = 1; i < requests.size(); ++i)
    ASSERT_LE(requests[i - 1].arrival_time, requests[i].arrival_time) << "line " << i + 1;
  // 2000 arrivals at 8/s take 250 s on average, with a standard deviation of about 5.6 s.
  EXPECT_NEAR(requests.back().arrival_time, 250.0, 25.0);
}

TEST(Workload, SystemPromptPopularityFollowsZipf) {
  std::vector<Request> requests = trace(spec_of(WorkloadKind::system_prompt, 2000, 3));
  std::map<std::size_t, std::size_t> uses;
  std::map<std::size_t, std::vector<std::int32_t>> prompt_of_rank;
  for (const Request& r : requests) {
    std::size_t rank = group_of(r.id, "sys-p");
    ++uses[rank];
    std::vector<std::int32_t> system = head(r.prompt_token_ids, 256);
    auto [it, inserted] = prompt_of_rank.emplace(rank, system);
    EXPECT_EQ(it->second, system) << r.id << " does not start with its system prompt";
    EXPECT_GE(r.prompt_token_ids.size(), 256u + 16u);
    EXPECT_LE(r.prompt_token_ids.size(), 256u + 64u);
  }
  ASSERT_EQ(uses.size(), 4u);
  // Zipf(1.1) over 4 ranks: P = 0.504, 0.235, 0.151, 0.110.
  const double expected[] = {0.504, 0.235, 0.151, 0.110};
  for (std::size_t rank = 0; rank < 4; ++rank) {
    EXPECT_NEAR(static_cast<double>(uses[rank]) / 2000.0, expected[rank], 0.04) << "rank " << rank;
    if (rank > 0) {
      EXPECT_GT(uses[rank - 1], uses[rank]) << "rank " << rank;
    }
  }
  EXPECT_NE(prompt_of_rank[0], prompt_of_rank[1]);
}

TEST(Workload, ChatTurnsExtendThePreviousTurn) {
  std::vector<Request> requests = trace(spec_of(WorkloadKind::chat, 300, 5));
  struct Turn {
    std::size_t number;
    const Request* request;
  };
  std::map<std::size_t, Turn> last_turn;  // conversation -> its latest turn so far
  std::size_t follow_ups = 0;
  for (const Request& r : requests) {
    std::size_t dash = r.id.find("-t");
    ASSERT_NE(dash, std::string::npos) << r.id;
    std::size_t conversation = group_of(r.id.substr(0, dash), "chat-c");
    std::size_t turn = std::stoul(r.id.substr(dash + 2));
    auto it = last_turn.find(conversation);
    if (it == last_turn.end()) {
      EXPECT_EQ(turn, 0u) << r.id;
      EXPECT_GE(r.prompt_token_ids.size(), 32u);
      EXPECT_LE(r.prompt_token_ids.size(), 96u);
    } else {
      const auto& previous = it->second.request->prompt_token_ids;
      EXPECT_EQ(turn, it->second.number + 1) << r.id;
      EXPECT_TRUE(starts_with(r.prompt_token_ids, previous)) << r.id << " does not extend " << it->second.request->id;
      std::size_t added = r.prompt_token_ids.size() - previous.size();
      EXPECT_GE(added, 32u + 32u) << r.id;  // the answer stand-in (max_tokens) and a user turn
      EXPECT_LE(added, 32u + 96u) << r.id;
      ++follow_ups;
    }
    last_turn[conversation] = Turn{turn, &r};
  }
  EXPECT_GT(follow_ups, 100u);
  EXPECT_LE(last_turn.size(), 300u - follow_ups);
}

TEST(Workload, FewShotRequestsShareTheirTemplate) {
  std::vector<Request> requests = trace(spec_of(WorkloadKind::few_shot));
  std::map<std::size_t, std::vector<std::int32_t>> templates;
  for (const Request& r : requests) {
    ASSERT_EQ(r.prompt_token_ids.size(), 400u + 32u) << r.id;
    auto [it, inserted] = templates.emplace(group_of(r.id, "fewshot-t"), head(r.prompt_token_ids, 400));
    EXPECT_EQ(it->second, head(r.prompt_token_ids, 400)) << r.id;
  }
  ASSERT_EQ(templates.size(), 3u);
  EXPECT_NE(head(templates[0], 16), head(templates[1], 16));
  EXPECT_NE(head(templates[1], 16), head(templates[2], 16));
}

TEST(Workload, ScanOneOffPromptsShareNoBlockWhileTheHotPrefixRecurs) {
  std::vector<Request> requests = trace(spec_of(WorkloadKind::scan, 400, 11));
  std::vector<std::int32_t> hot_prefix;
  std::set<std::vector<std::int32_t>> one_off_blocks;
  std::size_t hot = 0;
  for (const Request& r : requests) {
    if (r.id.rfind("scan-hot-", 0) == 0) {
      ASSERT_EQ(r.prompt_token_ids.size(), 256u + 32u) << r.id;
      if (hot_prefix.empty()) hot_prefix = head(r.prompt_token_ids, 256);
      EXPECT_TRUE(starts_with(r.prompt_token_ids, hot_prefix)) << r.id;
      ++hot;
    } else {
      ASSERT_EQ(r.id.rfind("scan-once-", 0), 0u) << r.id;
      EXPECT_GE(r.prompt_token_ids.size(), 512u) << r.id;
      EXPECT_LE(r.prompt_token_ids.size(), 1024u) << r.id;
      EXPECT_TRUE(one_off_blocks.insert(head(r.prompt_token_ids, 16)).second) << r.id << " repeats a first block";
    }
  }
  ASSERT_FALSE(hot_prefix.empty());
  EXPECT_EQ(one_off_blocks.count(head(hot_prefix, 16)), 0u);
  EXPECT_NEAR(static_cast<double>(hot) / 400.0, 0.5, 0.1);
}

// multi-turn: each turn extends its conversation's previous prompt by the answer's stand-in and
// a new turn, histories stay within max_history_tokens, and the open conversations take turns
// round robin, so each returns only after all the others.
TEST(Workload, MultiTurnHistoriesGrowTurnByTurnWithinTheirBoundAndComeBackRoundRobin) {
  WorkloadSpec spec = spec_of(WorkloadKind::multi_turn, 120);
  spec.multi_turn = {4, 512, 128, 256, 2048};
  const std::vector<Request> requests = trace(spec);
  ASSERT_EQ(requests.size(), 120u);
  std::map<std::string, std::vector<std::int32_t>> last;  // conversation -> its last prompt
  std::map<std::string, std::size_t> last_seen;
  std::size_t ended = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    const std::string conversation = r.id.substr(0, r.id.find("-t"));
    const int turn = std::stoi(r.id.substr(r.id.find("-t") + 2));
    EXPECT_LE(r.prompt_token_ids.size() + static_cast<std::size_t>(spec.max_tokens), 2048u) << r.id;
    if (turn == 0) {
      EXPECT_EQ(r.prompt_token_ids.size(), 512u) << r.id;
      ended += !last.empty() && i >= 4;
    } else {
      ASSERT_TRUE(last.contains(conversation)) << r.id;
      const std::size_t added = r.prompt_token_ids.size() - last[conversation].size();
      EXPECT_TRUE(starts_with(r.prompt_token_ids, last[conversation])) << r.id << " extends its previous turn";
      EXPECT_GE(added, 32u + 128u) << r.id;
      EXPECT_LE(added, 32u + 256u) << r.id;
      EXPECT_EQ(i - last_seen[conversation], 4u) << r.id << " comes back after the three others";
    }
    last[conversation] = r.prompt_token_ids;
    last_seen[conversation] = i;
  }
  EXPECT_GT(ended, 4u) << "conversations reach their longest history and are replaced";
}

TEST(Workload, FittingToAContextShrinksScansAndHistoriesToFitWithTheOutput) {
  WorkloadSpec spec = spec_of(WorkloadKind::multi_turn, 60);
  fit_to_context(spec, 512);
  for (WorkloadKind kind : {WorkloadKind::multi_turn, WorkloadKind::scan}) {
    spec.kind = kind;
    for (const Request& r : trace(spec))
      EXPECT_LE(r.prompt_token_ids.size() + static_cast<std::size_t>(spec.max_tokens), 511u) << r.id;
  }
}

TEST(Workload, ZeroRequestsWriteNothing) {
  EXPECT_EQ(trace_text(spec_of(WorkloadKind::chat, 0)), "");
}

TEST(Workload, KindNamesRoundTrip) {
  for (WorkloadKind kind : kAllKinds) EXPECT_EQ(parse_workload_kind(workload_kind_name(kind)), kind);
  EXPECT_EQ(parse_workload_kind("system-prompt"), WorkloadKind::system_prompt);
  EXPECT_EQ(parse_workload_kind("system_prompt"), WorkloadKind::system_prompt);
  EXPECT_EQ(parse_workload_kind("few-shot"), WorkloadKind::few_shot);
  EXPECT_EQ(parse_workload_kind("fewshot"), std::nullopt);
  EXPECT_EQ(parse_workload_kind(""), std::nullopt);
}

TEST(Workload, OutOfRangeSpecIsAUsageErrorNamingTheField) {
  auto message_for = [](const WorkloadSpec& spec) -> std::string {
    try {
      trace_text(spec);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  WorkloadSpec spec = spec_of(WorkloadKind::chat);
  spec.rate = 0;
  EXPECT_NE(message_for(spec).find("\"rate\" must be a number > 0"), std::string::npos) << message_for(spec);
  spec = spec_of(WorkloadKind::chat);
  spec.vocab_size = 3;
  EXPECT_NE(message_for(spec).find("\"vocab_size\""), std::string::npos) << message_for(spec);
  spec = spec_of(WorkloadKind::scan);
  spec.scan.scan_tokens_max = 100;
  EXPECT_NE(message_for(spec).find("\"scan.scan_tokens_max\" must be >= scan.scan_tokens_min (512), got 100"),
            std::string::npos)
      << message_for(spec);
  spec = spec_of(WorkloadKind::system_prompt);
  spec.system_prompt.count = 0;
  EXPECT_NE(message_for(spec).find("\"system_prompt.count\""), std::string::npos) << message_for(spec);
}

}  // namespace
}  // namespace loom
