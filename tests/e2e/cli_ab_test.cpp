// `loom ab` end to end: three evictors (and the SDK's out-of-tree example) on one generated
// workload; the report holds every metric, outputs are identical across evictors, and on the
// scan workload ARC keeps more prefix hits than LRU.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/io/random_model.h"
#include "run_loom.h"
#include "support/expect_error.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

class CliAb : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("loom_cli_ab_" + std::to_string(::getpid()));
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);
    spec.config.vocab_size = 512;
    spec.config.max_position_embeddings = 2048;
    io::write_random_model(spec, dir_ / "model");
    // A pool far smaller than the workload's distinct prefixes, so the evictor decides.
    std::ofstream(dir_ / "ab.toml") << "[model]\npath = \"model\"\n[engine]\nmax_num_seqs = 4\n"
                                       "[kv]\nblock_size = 16\nnum_blocks = 160\n[sampling]\nmax_tokens = 4\n";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static nlohmann::json report(const std::string& name) {
    return nlohmann::json::parse(std::ifstream(dir_ / name / "report.json"));
  }
  static fs::path dir_;
};
fs::path CliAb::dir_;

TEST_F(CliAb, ThreeEvictorsOnTheScanWorkload) {
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() +
                         " --workload scan --requests 120 --vary evictor.plugin=lru,lfu,arc --report " +
                         (dir_ / "scan").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "prefix hit rate (tokens)");
  const auto json = report("scan");
  ASSERT_EQ(json["arms"].size(), 3u);
  std::map<std::string, double> hit_rate;
  for (const auto& arm : json["arms"]) {
    for (const char* key : {"prefix_hit_rate", "recomputed_prefill_tokens", "evictions", "throughput_tok_s", "output_tok_s",
                            "ttft_ms", "e2e_ms", "outputs_identical"})
      EXPECT_TRUE(arm.contains(key)) << key;
    for (const char* p : {"p50", "p90", "p99"}) {
      EXPECT_TRUE(arm["ttft_ms"].contains(p));
      EXPECT_TRUE(arm["e2e_ms"].contains(p));
    }
    EXPECT_TRUE(arm["outputs_identical"].get<bool>()) << arm["name"];
    EXPECT_GT(arm["evictions"].get<double>(), 0) << arm["name"] << ": the pool must be under pressure";
    hit_rate[arm["name"]] = arm["prefix_hit_rate"];
  }
  EXPECT_GT(hit_rate["arc"], hit_rate["lru"]) << "ARC must resist the scan better than LRU";
  EXPECT_TRUE(fs::exists(dir_ / "scan" / "report.md"));
  std::ifstream svg(dir_ / "scan" / "plot.svg");
  std::string plot((std::istreambuf_iterator<char>(svg)), {});
  EXPECT_CONTAINS(plot, "<svg");
  EXPECT_CONTAINS(plot, "arc");
}

TEST_F(CliAb, TheOutOfTreeExamplePluginRunsNextToInTreeOnes) {
  // e2e.install_sdk (a ctest fixture of this test) builds sdk/examples/fifo_evictor against the
  // installed SDK; here its library is named by path next to an in-tree evictor.
  const fs::path fifo = fs::path(LOOM_BINARY_DIR) / "e2e/install_sdk/fifo_build/libloom_evictor_fifo.so";
  ASSERT_TRUE(fs::exists(fifo)) << fifo << " was not built: run the whole suite (ctest), which runs e2e.install_sdk first";
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --workload system-prompt --requests 60" +
                         " --vary evictor.plugin=lru," + fifo.string() + " --report " + (dir_ / "fifo").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto json = report("fifo");
  ASSERT_EQ(json["arms"].size(), 2u);
  EXPECT_TRUE(json["arms"][1]["outputs_identical"].get<bool>());
  EXPECT_EQ(json["arms"][1]["name"], "fifo") << "an arm given by a plugin's path is labelled by its name";
  EXPECT_EQ(run.output.find("libloom_evictor_fifo.so"), std::string::npos) << "no path in the table:\n" << run.output;

  // Without --report, the table alone.
  LoomRun table = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --workload system-prompt --requests 20" +
                           " --vary evictor.plugin=lru," + fifo.string());
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_CONTAINS(table.output, "outputs identical to first");
  EXPECT_EQ(table.output.find("report:"), std::string::npos);
}

// The offload tier against none on returning conversations: the token hit rate counts prompt
// tokens served from any tier, each tier's share beside it.
TEST_F(CliAb, TheOffloadTiersShareOfTheHitRateIsReportedPerTier) {
  std::ofstream(dir_ / "offload.toml") << "[model]\npath = \"model\"\n[engine]\nmax_num_seqs = 4\n"
                                          "[kv]\nblock_size = 16\nnum_blocks = 64\n[sampling]\nmax_tokens = 4\n"
                                          "[kv_connector]\nplugin = \"offload\"\n";
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --config " +
                         (dir_ / "offload.toml").string() + " --workload multi-turn --requests 24 --report " +
                         (dir_ / "tiers").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "of it loaded: host");
  const auto json = report("tiers");
  ASSERT_EQ(json["arms"].size(), 2u);
  const auto& tiered = json["arms"][1];
  EXPECT_TRUE(tiered["outputs_identical"].get<bool>());
  ASSERT_TRUE(tiered.contains("prefix_hit_rate_host")) << tiered.dump();
  EXPECT_GT(tiered["prefix_hit_rate_host"].get<double>(), 0.0);
  EXPECT_LE(tiered["prefix_hit_rate_host"].get<double>() + tiered["prefix_hit_rate_disk"].get<double>(),
            tiered["prefix_hit_rate"].get<double>());
  EXPECT_FALSE(json["arms"][0].contains("prefix_hit_rate_host"));
}

// On the measured clock a step takes the time it took: the rows say so, and the report lists
// every request of an arm with its prompt and first-token time (what gained, by prompt length).
TEST_F(CliAb, TheMeasuredClockLabelsItsLatenciesAndTheReportListsEachRequestsTtft) {
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() +
                         " --workload multi-turn --requests 12 --clock measured --vary kv_connector.plugin=none,offload"
                         " --report " + (dir_ / "measured").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "TTFT p50 ms (measured)");
  const auto json = report("measured");
  EXPECT_EQ(json["clock"], "measured");
  EXPECT_FALSE(json.contains("step_cost"));
  for (const auto& arm : json["arms"]) {
    ASSERT_EQ(arm["requests"].size(), 12u) << arm["name"];
    for (const auto& r : arm["requests"]) {
      EXPECT_GT(r["prompt_tokens"].get<int>(), 0);
      EXPECT_GT(r["ttft_ms"].get<double>(), 0.0) << r["id"];
    }
  }
  LoomRun mixed = run_loom("ab --config " + (dir_ / "ab.toml").string() +
                           " --workload scan --clock measured --step-ms 2 --vary evictor.plugin=lru,lfu");
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_CONTAINS(mixed.output, "not with --clock measured");
  LoomRun unknown = run_loom("ab --config " + (dir_ / "ab.toml").string() +
                             " --workload scan --clock wall --vary evictor.plugin=lru,lfu");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_CONTAINS(unknown.output, "expected virtual or measured");
}

TEST_F(CliAb, NeedsTwoArms) {
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --workload scan --report " +
                         (dir_ / "none").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_CONTAINS(run.output, "at least two arms");
}

// A trace written for another vocabulary would fail every request of every arm and show a table
// of zeros: it is refused before anything runs, saying how to write one that fits.
TEST_F(CliAb, ATraceThatDoesNotFitTheModelIsRefusedAndWorkloadModelWritesOneThatDoes) {
  const fs::path wide = dir_ / "wide.jsonl", fitted = dir_ / "fitted.jsonl";
  fs::remove(wide);
  fs::remove(fitted);
  ASSERT_EQ(run_loom("workload --kind chat --requests 6 --output " + wide.string()).exit_code, 0);  // vocabulary 32000
  LoomRun refused = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --workload " + wide.string() +
                             " --vary evictor.plugin=lru,lfu --report " + (dir_ / "refused").string());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_CONTAINS(refused.output, "outside the model's vocabulary of 512");
  EXPECT_CONTAINS(refused.output, "loom workload --vocab 512 (or --model PATH)");
  EXPECT_FALSE(fs::exists(dir_ / "refused" / "report.md"));

  LoomRun written = run_loom("workload --kind scan --requests 6 --max-tokens 8 --output " + fitted.string() +
                             " --model " + (dir_ / "model").string());
  ASSERT_EQ(written.exit_code, 0) << written.output;
  LoomRun fits = run_loom("ab --config " + (dir_ / "ab.toml").string() + " --workload " + fitted.string() +
                          " --vary evictor.plugin=lru,lfu --report " + (dir_ / "fitted").string());
  EXPECT_EQ(fits.exit_code, 0) << fits.output;
}

// An arm whose requests fail (a pool too small for them) shows how many, and is marked as not
// comparable: its latencies leave the failed requests out and would look better.
TEST_F(CliAb, AnArmWithFailedRequestsCountsThemAndIsMarkedNotComparable) {
  LoomRun run = run_loom("ab --config " + (dir_ / "ab.toml").string() +
                         " --workload scan --requests 8 --vary kv.num_blocks=6,4096 --report " +
                         (dir_ / "failing").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "requests failed");
  EXPECT_CONTAINS(run.output, "NOT COMPARABLE: 6: 8 of 8 requests failed");
  EXPECT_CONTAINS(run.output, "pool has only 6 blocks");
  EXPECT_EQ(run.output.find("NOT COMPARABLE: 4096"), std::string::npos);
  const nlohmann::json json = report("failing");
  EXPECT_FALSE(json["arms"][0]["comparable"].get<bool>());
  EXPECT_TRUE(json["arms"][1]["comparable"].get<bool>());
}

}  // namespace
}  // namespace loom::testing
