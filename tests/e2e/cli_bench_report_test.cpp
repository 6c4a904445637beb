// `loom bench --report DIR` on the CPU: the report's five experiments are written as markdown,
// SVG plots and JSON whose figures hold together (shares of a step add up to one, recomputing
// the context costs more than the KV cache, the KV table follows the model's shape).
#include <unistd.h>

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

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class CliBenchReport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("loom_bench_report_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);  // hidden 64, 2 layers, 2 KV heads, vocab 256
    spec.config.max_position_embeddings = 512;
    io::write_random_model(spec, dir_ / "model");
    std::ofstream(dir_ / "run.toml") << "[model]\npath = \"model\"\n[engine]\nmax_num_seqs = 8\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CliBenchReport, WritesEveryExperimentAsMarkdownPlotsAndConsistentJson) {
  const fs::path report = dir_ / "report";
  LoomRun run = run_loom("bench --config " + (dir_ / "run.toml").string() + " --report " + report.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "report: " + (report / "report.md").string());

  const std::string md = read(report / "report.md");
  for (const char* section : {"## 1. Where a decode step's time goes, by batch size", "## 2.", "## 3. Prefill latency",
                              "## 4. KV-cache memory", "## 5. Generating with and without the KV cache"})
    EXPECT_CONTAINS(md, section);
  for (const char* plot : {"step_phases_by_batch.svg", "step_phases_by_context.svg", "prefill_latency.svg",
                           "kv_memory.svg", "kv_cache_vs_recompute.svg"}) {
    EXPECT_CONTAINS(md, std::string("(") + plot + ")");
    const std::string svg = read(report / plot);
    EXPECT_TRUE(svg.starts_with("<svg ")) << plot;
    EXPECT_TRUE(svg.ends_with("</svg>\n")) << plot;
  }

  const nlohmann::json j = nlohmann::json::parse(read(report / "report.json"));
  ASSERT_EQ(j["decode_by_batch"].size(), 4u) << "batches 1, 2, 4, 8 (max_num_seqs 8)";
  for (const char* sweep : {"decode_by_batch", "decode_by_context"})
    for (const auto& row : j[sweep]) {
      double sum = 0;
      for (const char* part : {"GEMMs", "attention", "norms and activations", "sampling", "host"}) {
        EXPECT_GE(row[part].get<double>(), 0.0) << sweep << " " << part;
        sum += row[part].get<double>();
      }
      EXPECT_NEAR(sum, 1.0, 0.02) << sweep << ": " << row.dump();
      EXPECT_GT(row["GEMMs"].get<double>(), 0.0) << "the projections were timed";
      EXPECT_GT(row["attention"].get<double>(), 0.0) << "attention was timed";
      EXPECT_GT(row["step_ms"].get<double>(), 0.0);
    }
  ASSERT_GE(j["prefill"].size(), 4u);
  EXPECT_GT(j["prefill"].back()["latency_ms"].get<double>(), j["prefill"].front()["latency_ms"].get<double>())
      << "a prompt many times longer takes longer";
  EXPECT_DOUBLE_EQ(j["kv_bytes_per_token"].get<double>(), 2.0 * 2 * 2 * 16 * 4) << "2 x layers x KV heads x dim x fp32";
  const auto& generation = j["generation"];
  ASSERT_EQ(generation["with_kv_cache_ms"].size(), generation["new_tokens"].get<std::size_t>());
  ASSERT_EQ(generation["recompute_ms"].size(), generation["new_tokens"].get<std::size_t>());
  EXPECT_GT(generation["recompute_ms"].back().get<double>(), 2 * generation["with_kv_cache_ms"].back().get<double>());
}

TEST_F(CliBenchReport, IsRefusedBesideAWorkloadAndForAReportPathThatIsAFile) {
  std::ofstream(dir_ / "a_file") << "x";
  LoomRun file = run_loom("bench --config " + (dir_ / "run.toml").string() + " --report " + (dir_ / "a_file").string());
  EXPECT_EQ(file.exit_code, 2) << file.output;
  EXPECT_CONTAINS(file.output, "is a file; give a folder");
  LoomRun both =
      run_loom("bench --config " + (dir_ / "run.toml").string() + " --run 1,16,16 --report " + (dir_ / "r").string());
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_CONTAINS(both.output, "--report runs its own experiments; leave out --run");
}

}  // namespace
}  // namespace loom::testing
