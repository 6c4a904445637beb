// Broken model files and tokenizers, given to the command line: each is one clear message
// naming the file and the tensor or field, and exit code 2 — never a crash.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "core/io/random_model.h"
#include "run_loom.h"
#include "support/expect_error.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

class CliModelErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("loom_cli_errors_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);
    spec.config.tie_word_embeddings = false;
    io::write_random_model(spec, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void write(const fs::path& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }
  void edit_config(const std::string& from, const std::string& to) {
    std::string json = read(dir_ / "config.json");
    auto at = json.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << json;
    write(dir_ / "config.json", json.replace(at, from.size(), to));
  }
  LoomRun inspect(const std::string& extra = "") { return run_loom("inspect " + dir_.string() + " " + extra); }

  fs::path dir_;
};

TEST_F(CliModelErrors, AGoodModelInspectsCleanly) {
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "LlamaForCausalLM");
}

TEST_F(CliModelErrors, TruncatedSafetensors) {
  std::string data = read(dir_ / "model.safetensors");
  write(dir_ / "model.safetensors", data.substr(0, data.size() / 2));
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "model.safetensors");
}

TEST_F(CliModelErrors, WrongDtype) {
  std::string data = read(dir_ / "model.safetensors");
  auto at = data.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  write(dir_ / "model.safetensors", data.replace(at, 5, "\"I32\""));
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "I32");
}

TEST_F(CliModelErrors, MissingTensor) {
  edit_config("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": false, \"num_hidden_layers\": 3");
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "model.layers.2.");
}

TEST_F(CliModelErrors, ShapeMismatchNamesTensorExpectedAndFound) {
  edit_config("\"intermediate_size\": 128", "\"intermediate_size\": 96");
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "mlp.");
  EXPECT_CONTAINS(run.output, "96");
  EXPECT_CONTAINS(run.output, "128");
}

TEST_F(CliModelErrors, UnsupportedArchitecture) {
  edit_config("LlamaForCausalLM", "GPT2LMHeadModel");
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "GPT2LMHeadModel");
  EXPECT_CONTAINS(run.output, "LlamaForCausalLM");  // the supported ones are listed
}

TEST_F(CliModelErrors, CorruptTokenizer) {
  std::string garbage(4096, '\0');
  std::mt19937 rng(1);
  for (char& c : garbage) c = static_cast<char>(rng());
  write(dir_ / "tokenizer.model", garbage);
  LoomRun run = inspect();
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "tokenizer.model");
}

TEST_F(CliModelErrors, MissingModelAndUsageErrors) {
  LoomRun missing = run_loom("inspect /nonexistent/model");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_CONTAINS(missing.output, "/nonexistent/model");
  LoomRun usage = run_loom("inspect");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  LoomRun unknown = run_loom("frobnicate");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_CONTAINS(unknown.output, "unknown command 'frobnicate'");
}

// A draft model is checked with the config, before the target's weights load: the message names
// the [speculative] key and says what is wrong with it.
TEST_F(CliModelErrors, ADraftModelMissingOfAnotherVocabularyOrTooLargeIsRefusedByItsKey) {
  write(dir_ / "in.jsonl", "{\"prompt_token_ids\": [1, 2, 3], \"max_tokens\": 4}\n");
  const std::string generate = "generate --input " + (dir_ / "in.jsonl").string() + " --output " +
                               (dir_ / "out.jsonl").string() + " -m " +
                               (test_models_dir() / "stories260K.bin").string() +
                               " --set speculative.plugin=draft_model --set speculative.model=";
  LoomRun missing = run_loom(generate + (dir_ / "nowhere").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_CONTAINS(missing.output, "[speculative] model: '" + (dir_ / "nowhere").string() + "' does not exist");
  LoomRun other_vocabulary = run_loom(generate + dir_.string());  // 256 tokens; stories260K has 512
  EXPECT_EQ(other_vocabulary.exit_code, 2) << other_vocabulary.output;
  EXPECT_CONTAINS(other_vocabulary.output, "[speculative] model: " + dir_.string() + " has a vocabulary of 256 tokens");
  EXPECT_CONTAINS(other_vocabulary.output, "one of 512");
  LoomRun too_large = run_loom(generate + (test_models_dir() / "stories260K.bin").string() +
                               " --set speculative.kv_tokens=1000000000000");
  EXPECT_EQ(too_large.exit_code, 2) << too_large.output;
  EXPECT_CONTAINS(too_large.output, "[speculative] model: its KV cache of 1000000000000 tokens");
  EXPECT_FALSE(fs::exists(dir_ / "out.jsonl"));
  LoomRun none = run_loom(generate);
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_CONTAINS(none.output, "[speculative] model: no draft model given");
  // `loom config --explain` of a config whose own model cannot be read tries the plugins with a
  // stand-in shape: the draft model's vocabulary is not held against it.
  write(dir_ / "run.toml", "[model]\npath = \"missing\"\n[speculative]\nplugin = \"draft_model\"\nmodel = \"" +
                               (test_models_dir() / "stories260K.bin").string() + "\"\n");
  LoomRun explain = run_loom("config --explain " + (dir_ / "run.toml").string());
  EXPECT_EQ(explain.exit_code, 0) << explain.output;
}

TEST(CliRealModel, InspectsStories260K) {
  LoomRun run = run_loom("inspect " + (test_models_dir() / "stories260K.bin").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "5, hidden 64, FFN 172");
  EXPECT_CONTAINS(run.output, "interleaved pairs");
}

}  // namespace
}  // namespace loom::testing
