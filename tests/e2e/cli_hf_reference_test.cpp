// The transformers references through the whole command line: `loom generate` on the CPU engine
// reproduces transformers' greedy continuations for a RoPE-scaled model and for a Mistral whose
// sliding window is shorter than its max_position_embeddings (served up to the window, where
// the window changes nothing); `loom inspect` says which RoPE rule and context it will use; a
// prompt longer than the window fails alone; unimplemented settings exit 2 naming key and value.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model/hf_reference.h"
#include "run_loom.h"
#include "support/expect_error.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

class CliHfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CliHfReference, GenerateReproducesTransformersGreedyTokens) {
  const HfReferenceCase ref = load_hf_reference(GetParam());
  const fs::path dir = fs::temp_directory_path() / ("loom_cli_hf_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "run.toml") << "[model]\npath = \"" << ref.folder.string() << "\"\n";
  {
    std::ofstream input(dir / "in.jsonl");
    for (std::size_t i = 0; i < ref.prompts.size(); ++i)
      input << nlohmann::json{{"id", std::to_string(i)},
                              {"prompt_token_ids", ref.prompts[i].prompt},
                              {"max_tokens", ref.prompts[i].output.size()},
                              {"ignore_eos", true}}
                   .dump()
            << "\n";
    input << nlohmann::json{{"id", "too long"}, {"prompt_token_ids", std::vector<int>(300, 5)}}.dump() << "\n";
  }
  LoomRun run = run_loom("generate --quiet --accept-failures --config " + (dir / "run.toml").string() + " --input " +
                         (dir / "in.jsonl").string() + " --output " + (dir / "out.jsonl").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;  // "too long" fails alone, as it should
  std::ifstream out(dir / "out.jsonl");
  std::size_t checked = 0;
  for (std::string line; std::getline(out, line);) {
    const auto result = nlohmann::json::parse(line);
    const std::string id = result["id"].get<std::string>();
    if (id == "too long") {
      EXPECT_CONTAINS(result.dump(), "the prompt has 300 tokens; the model's context is");
      if (GetParam() == "mistral_window") {
        EXPECT_CONTAINS(result.dump(),
                        "context is 64 (prompt and output together); it is the checkpoint's sliding window");
      }
      continue;
    }
    EXPECT_EQ(result["token_ids"].get<std::vector<std::int32_t>>(), ref.prompts.at(std::stoul(id)).output)
        << GetParam() << ", prompt " << id;
    ++checked;
  }
  EXPECT_EQ(checked, ref.prompts.size());
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(ScaledRopeAndSlidingWindow, CliHfReference,
                         ::testing::Values("llama3", "qwen3_yarn_v4", "mistral_window"),
                         [](const auto& info) { return info.param; });

TEST(CliHfReferenceInspect, SaysWhichRopeRuleAndContextItUses) {
  LoomRun llama3 = run_loom("inspect " + (hf_reference_dir() / "llama3").string());
  EXPECT_EQ(llama3.exit_code, 0) << llama3.output;
  EXPECT_CONTAINS(llama3.output,
                  "rope:         theta 500000, llama3 scaling (factor 8, low_freq_factor 1, high_freq_factor 4, "
                  "original_max_position_embeddings 32), rotate-half pairs");
  LoomRun yarn = run_loom("inspect " + (hf_reference_dir() / "qwen3_yarn_v4").string());
  EXPECT_CONTAINS(yarn.output,
                  "theta 1000000, yarn scaling (factor 4, original_max_position_embeddings 32, beta_fast 32, "
                  "beta_slow 1, attention_factor 1.138629436)");
  LoomRun window = run_loom("inspect " + (hf_reference_dir() / "mistral_window").string());
  EXPECT_CONTAINS(window.output, "context:      64 positions (a sliding window of 64 of 256;");
}

// Found by a hostile user: a max_model_len above the model's context was clamped without a word.
TEST(CliHfReferenceInspect, MaxModelLenBeyondTheContextIsRefusedNamingIt) {
  const fs::path dir = fs::temp_directory_path() / ("loom_cli_hf_len_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "p.jsonl") << "{\"prompt_token_ids\": [1, 2, 3]}\n";
  for (const auto& [model, context] : {std::pair{"llama3", "256 positions;"},
                                       std::pair{"mistral_window", "64 positions (its sliding window;"}}) {
    std::ofstream(dir / "run.toml") << "[model]\npath = \"" << (hf_reference_dir() / model).string()
                                    << "\"\n[engine]\nmax_model_len = 300\n";
    LoomRun run = run_loom("generate --quiet --config " + (dir / "run.toml").string() + " --input " +
                           (dir / "p.jsonl").string());
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_CONTAINS(run.output, "run.toml:4: [engine] max_model_len: is 300, more than the model's context of ");
    EXPECT_CONTAINS(run.output, context);
  }
  fs::remove_all(dir);
}

TEST(CliHfReferenceInspect, UnimplementedSettingsExitTwoNamingKeyAndValue) {
  const fs::path dir = fs::temp_directory_path() / ("loom_cli_hf_refuse_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy(hf_reference_dir() / "llama2" / "model.safetensors", dir / "model.safetensors");
  nlohmann::json config = nlohmann::json::parse(std::ifstream(hf_reference_dir() / "llama2" / "config.json"));
  const std::pair<const char*, nlohmann::json> edits[] = {
      {"rope_parameters", {{"rope_type", "longrope"}, {"rope_theta", 10000.0}}},
      {"hidden_act", "gelu"},
      {"partial_rotary_factor", 0.5},
      {"mlp_bias", true}};
  const char* expected[] = {"rope_type \"longrope\" is not supported", "\"hidden_act\" = \"gelu\" is not supported",
                            "\"partial_rotary_factor\" = 0.5 is not supported", "\"mlp_bias\" = true is not supported"};
  for (std::size_t i = 0; i < std::size(edits); ++i) {
    nlohmann::json edited = config;
    edited[edits[i].first] = edits[i].second;
    std::ofstream(dir / "config.json") << edited.dump(1);
    LoomRun run = run_loom("inspect " + dir.string());
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_CONTAINS(run.output, (dir / "config.json").string());
    EXPECT_CONTAINS(run.output, expected[i]);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace loom::testing
