// `loom generate` and `loom bench` as a user runs them: text and JSONL in, JSONL out, bad lines,
// config errors, the real stories260K checkpoint, and the bench's JSON.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/io/random_model.h"
#include "run_loom.h"
#include "support/expect_error.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

class CliGenerate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("loom_cli_generate_" + std::to_string(::getpid()));
    io::RandomModelSpec spec;
    spec.config = io::tiny_config(io::Architecture::kLlama);
    spec.config.vocab_size = 32000;  // the Llama-2 tokenizer's
    spec.tokenizer_model = test_models_dir() / "llama2-tokenizer.model";
    io::write_random_model(spec, dir_ / "model");
    std::ofstream(dir_ / "run.toml") << "[model]\npath = \"model\"\n[sampling]\nmax_tokens = 5\n";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  static std::vector<nlohmann::json> lines_of(const fs::path& file) {
    std::vector<nlohmann::json> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  static std::string config() { return (dir_ / "run.toml").string(); }

  static fs::path dir_;
};
fs::path CliGenerate::dir_;

TEST_F(CliGenerate, TextPromptsGiveOneJsonLinePerRequest) {
  fs::path input = write("prompts.txt", "Hello there\n\nOnce upon a time\n");
  fs::path output = dir_ / "out.jsonl";
  LoomRun run =
      run_loom("generate --config " + config() + " --input " + input.string() + " --output " + output.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_CONTAINS(run.output, "requests        2 (0 failed)");
  auto lines = lines_of(output);
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines) {
    EXPECT_EQ(line["token_ids"].size(), 5u);
    EXPECT_EQ(line["finish_reason"], "length");
    EXPECT_TRUE(line["text"].is_string());
    EXPECT_TRUE(line["timings"]["ttft_ms"].is_number());
  }
}

// "-" is standard input and output; everything for people goes to standard error, so standard
// output is JSONL alone, and no file named "-" appears.
TEST_F(CliGenerate, DashReadsStandardInputAndWritesStandardOutput) {
  fs::path input = write("dash.txt", "Hello there\nOnce upon a time\n");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  LoomRun run = run_loom("generate --config " + config() + " --input - --output - < " + input.string(), "2>/dev/null");
  fs::current_path(cwd);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::istringstream out(run.output);
  int lines = 0;
  for (std::string line; std::getline(out, line); ++lines) {
    const nlohmann::json result = nlohmann::json::parse(line);  // throws on anything but JSON
    EXPECT_EQ(result["token_ids"].size(), 5u);
  }
  EXPECT_EQ(lines, 2);
  EXPECT_FALSE(fs::exists(dir_ / "-")) << "a file named '-' was written";
  LoomRun quiet = run_loom("generate --config " + config() + " --input - < " + input.string(), "2>&1 >/dev/null");
  EXPECT_CONTAINS(quiet.output, "requests        2 (0 failed)");  // the summary, on standard error
}

// A run in which requests failed writes every result, says how many failed and why, and exits 3
// (0 with --accept-failures); loom bench likewise.
TEST_F(CliGenerate, FailedRequestsMakeExitCode3UnlessAccepted) {
  fs::path input = write("failing.jsonl",
                         "{\"id\": \"good\", \"prompt_token_ids\": [1, 5, 6]}\n"
                         "{\"id\": \"bad\", \"prompt_token_ids\": [1, 99999]}\n");
  fs::path output = dir_ / "failing-out.jsonl";
  LoomRun run =
      run_loom("generate --config " + config() + " --input " + input.string() + " --output " + output.string());
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_CONTAINS(run.output,
                  "1 of 2 requests failed; the first, bad: prompt token id 99999 is outside the vocabulary");
  EXPECT_CONTAINS(run.output, "--accept-failures exits 0");
  EXPECT_EQ(lines_of(output).size(), 2u) << "both results are written";
  LoomRun accepted = run_loom("generate --config " + config() + " --input " + input.string() + " --output " +
                              output.string() + " --accept-failures");
  EXPECT_EQ(accepted.exit_code, 0) << accepted.output;
  EXPECT_CONTAINS(accepted.output, "1 of 2 requests failed");

  // Every request of a bench fails when its prompts exceed the context: a reason, and exit 3.
  LoomRun bench = run_loom("bench --config " + config() + " --run 2,5000,4");
  EXPECT_EQ(bench.exit_code, 3) << bench.output;
  EXPECT_CONTAINS(bench.output, "requests failed; the first");
  EXPECT_CONTAINS(bench.output, "the prompt has 5000 tokens");
}

// The flags of vLLM and llama.cpp habits: a model without a config, prompts on the command line,
// sampling defaults and a max-tokens cap as flags, results in input order, a quiet run.
TEST_F(CliGenerate, ModelAndPromptFlagsRunWithoutAConfigAndOrderedKeepsInputOrder) {
  const std::string model = (dir_ / "model").string();
  LoomRun prompts =
      run_loom("generate -m " + model + " -p Hello -p \"Once upon a time\" --max-tokens 3 --ordered", "2>/dev/null");
  ASSERT_EQ(prompts.exit_code, 0) << prompts.output;
  std::istringstream lines(prompts.output);
  std::vector<nlohmann::json> results;
  for (std::string line; std::getline(lines, line);) results.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["id"], "prompt-1");
  EXPECT_EQ(results[1]["id"], "prompt-2");
  for (const auto& r : results) EXPECT_EQ(r["token_ids"].size(), 3u);

  // The longest request first: it finishes last, yet --ordered writes it first; --max-tokens caps
  // a request's own max_tokens, and --seed and --temperature reach the engine.
  fs::path input = write("order.jsonl",
                         "{\"id\": \"long\", \"prompt\": \"Hi\", \"max_tokens\": 40, \"ignore_eos\": true}\n"
                         "{\"id\": \"short\", \"prompt\": \"Hi\", \"max_tokens\": 2, \"ignore_eos\": true}\n");
  LoomRun unordered = run_loom("generate -m " + model + " -i " + input.string(), "2>/dev/null");
  EXPECT_LT(unordered.output.find("\"short\""), unordered.output.find("\"long\"")) << "finish order by default";
  LoomRun ordered =
      run_loom("generate -m " + model + " -i " + input.string() + " --ordered --max-tokens 9", "2>/dev/null");
  EXPECT_LT(ordered.output.find("\"long\""), ordered.output.find("\"short\""));
  std::istringstream capped(ordered.output);
  std::string first;
  std::getline(capped, first);
  EXPECT_EQ(nlohmann::json::parse(first)["token_ids"].size(), 9u) << "40 asked, capped at 9";
  LoomRun sampled =
      run_loom("generate -m " + model + " -p Hello --temperature 0.9 --seed 4 --max-tokens 6", "2>/dev/null");
  LoomRun again =
      run_loom("generate -m " + model + " -p Hello --temperature 0.9 --seed 4 --max-tokens 6", "2>/dev/null");
  LoomRun other =
      run_loom("generate -m " + model + " -p Hello --temperature 0.9 --seed 5 --max-tokens 6", "2>/dev/null");
  EXPECT_EQ(sampled.output.substr(0, sampled.output.find("timings")),
            again.output.substr(0, again.output.find("timings")));
  EXPECT_NE(sampled.output.substr(0, sampled.output.find("timings")),
            other.output.substr(0, other.output.find("timings")));

  LoomRun quiet = run_loom("generate -m " + model + " -p Hello -q", "2>&1 >/dev/null");
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.output, "") << "--quiet prints nothing on standard error";

  // [sampling] min_tokens reaches requests that do not set it (here one asking for fewer tokens).
  LoomRun min_tokens = run_loom("generate -m " + model + " -i " + input.string() + " --set sampling.min_tokens=5");
  EXPECT_CONTAINS(min_tokens.output, "'min_tokens' = 5 is out of range; accepted: min_tokens <= max_tokens");

  EXPECT_CONTAINS(run_loom("generate -p Hello").output, "give --config FILE or -m/--model PATH");
  EXPECT_CONTAINS(run_loom("generate -m " + model + " -p Hello -i " + input.string()).output,
                  "give either --input FILE (or -) or -p/--prompt TEXT");
}

TEST_F(CliGenerate, BadLinesAreSkippedWithTheirLineOrFailTheRun) {
  fs::path input = write("mixed.jsonl",
                         "{\"id\": \"a\", \"prompt\": \"Hi\", \"max_tokens\": 3}\n"
                         "{\"id\": \"b\", \"prompt\": \"Hi\", \"temprature\": 1}\n"
                         "{\"id\": \"c\", \"prompt_token_ids\": [1, 2, 99999999]}\n");
  LoomRun skip = run_loom("generate --config " + config() + " --input " + input.string());
  ASSERT_EQ(skip.exit_code, 3) << skip.output;  // c failed: its result is written, the exit code says so
  EXPECT_CONTAINS(skip.output, "mixed.jsonl:2:");
  EXPECT_CONTAINS(skip.output, "Did you mean 'temperature'?");
  EXPECT_CONTAINS(skip.output, "\"id\":\"a\"");
  EXPECT_CONTAINS(skip.output, "\"finish_reason\":\"error\"");  // c: a token outside the vocabulary fails alone
  LoomRun fail = run_loom("generate --config " + config() + " --input " + input.string() + " --on-bad-line fail");
  EXPECT_EQ(fail.exit_code, 2) << fail.output;
  EXPECT_CONTAINS(fail.output, "mixed.jsonl:2:");
  EXPECT_EQ(fail.output.find("\"id\":\"a\""), std::string::npos);  // nothing generated
}

TEST_F(CliGenerate, ConfigMistakesStopTheRunWithExitCode2) {
  fs::path input = write("one.txt", "Hi\n");
  LoomRun run = run_loom("generate --config " + config() + " --input " + input.string() + " --set evictor.plugin=lur");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "Did you mean 'lru'?");
  LoomRun key =
      run_loom("generate --config " + config() + " --input " + input.string() + " --set engine.max_num_seq=2");
  EXPECT_EQ(key.exit_code, 2);
  EXPECT_CONTAINS(key.output, "unknown key 'max_num_seq'");
  LoomRun usage = run_loom("generate --config " + config());
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_CONTAINS(usage.output, "--input");
}

// A key the plugin refuses only in its constructor (fcfs: a negative max_prefill_chunk) stops
// `generate` before the weights are read — shown with a model whose config.json is fine but
// whose weights file is garbage — and `config --explain` refuses it the same way.
TEST_F(CliGenerate, AKeyAPluginsConstructorRefusesStopsTheRunBeforeTheWeightsAreRead) {
  const fs::path broken = dir_ / "broken-model";
  fs::create_directories(broken);
  fs::copy_file(dir_ / "model" / "config.json", broken / "config.json", fs::copy_options::overwrite_existing);
  std::ofstream(broken / "model.safetensors") << "not a safetensors file";
  const fs::path input = write("one-more.txt", "Hi\n");
  const std::string bad = " --set scheduler.max_prefill_chunk=-1";
  LoomRun run = run_loom("generate -m " + broken.string() + " --input " + input.string() + bad);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_CONTAINS(run.output, "max_prefill_chunk: must be 0 (unlimited) or positive");
  EXPECT_EQ(run.output.find("safetensors"), std::string::npos) << "the weights were read first: " << run.output;
  LoomRun without = run_loom("generate -m " + broken.string() + " --input " + input.string());
  EXPECT_NE(without.exit_code, 0);
  EXPECT_CONTAINS(without.output, "model.safetensors") << "the broken weights are what a good config trips on";
  LoomRun explain = run_loom("config --explain " + config() + bad);
  EXPECT_EQ(explain.exit_code, 2) << explain.output;
  EXPECT_CONTAINS(explain.output, "max_prefill_chunk: must be 0 (unlimited) or positive");
  LoomRun good = run_loom("config --explain " + config(), "2>&1");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_CONTAINS(good.output, "constructed with these values and the model's shape");
}

// Found by a hostile user: inputs that were silently misread. A *.jsonl file is JSONL even when
// its first line is a comment (that line is skipped as bad, named); a text file whose later lines
// look like JSON gets a warning naming the line; a binary file is refused (exit 2) instead of
// becoming prompts; an n beyond the bound fails as one error line, not one per sample, that
// gives the prompt's length; the summary counts the skipped lines.
TEST_F(CliGenerate, InputsThatWouldBeMisreadAreReadAsNamedWarnedOrRefused) {
  const std::string json_line = R"({"prompt_token_ids": [5, 6, 7]})";
  const fs::path jsonl = write("commented.jsonl", "# made by hand\n" + json_line + "\n");
  LoomRun as_jsonl = run_loom("generate --config " + config() + " --input " + jsonl.string(), "2>&1");
  EXPECT_EQ(as_jsonl.exit_code, 0) << as_jsonl.output;
  EXPECT_CONTAINS(as_jsonl.output, "skipped " + jsonl.string() + ":1: not valid JSON");
  EXPECT_CONTAINS(as_jsonl.output, "\"prompt_tokens\":3");
  EXPECT_CONTAINS(as_jsonl.output, "requests        1 (0 failed); 1 input lines skipped");

  const fs::path text = write("commented.txt", "# made by hand\n" + json_line + "\n");
  LoomRun as_text = run_loom("generate --config " + config() + " --input " + text.string(), "2>&1");
  EXPECT_CONTAINS(as_text.output, "warning: " + text.string() + ":2: starts with '{' but the input is read as text");

  std::string binary = "ELF";
  binary += '\0';
  binary += "\x01\x02\nmore\n";
  const fs::path blob = write("blob.bin", binary);
  LoomRun refused = run_loom("generate --config " + config() + " --input " + blob.string(), "2>&1");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_CONTAINS(refused.output, blob.string() + ":1: holds a NUL byte");

  const fs::path many = write("many.jsonl", R"({"prompt_token_ids": [5, 6], "n": 100000})"
                                            "\n");
  LoomRun bounded = run_loom("generate --config " + config() + " --input " + many.string(), "2>/dev/null");
  EXPECT_EQ(bounded.exit_code, 3);
  EXPECT_EQ(std::count(bounded.output.begin(), bounded.output.end(), '\n'), 1) << bounded.output.substr(0, 400);
  EXPECT_CONTAINS(bounded.output, "1 <= n <= 256");
  EXPECT_CONTAINS(bounded.output, "\"prompt_tokens\":2") << "an error line still says how long the prompt was";
}

// Found by a hostile user: --output naming the --input file overwrote the requests, mkmodel
// replaced an existing model in silence, and a bad workload argument truncated the output file
// before failing. Each is now refused before anything is loaded or written.
TEST_F(CliGenerate, AMistakeNeverClobbersAUsersFile) {
  const fs::path requests = write("keep.txt", "Hello there\n");
  LoomRun same =
      run_loom("generate --config " + config() + " --input " + requests.string() + " --output " + requests.string());
  EXPECT_EQ(same.exit_code, 2) << same.output;
  EXPECT_CONTAINS(same.output, "is the --input file");
  EXPECT_EQ(same.output.find("loom: loaded"), std::string::npos) << "refused before the model loads";
  std::ifstream kept(requests);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "Hello there\n");

  LoomRun missing = run_loom("generate --config " + config() + " --input " + (dir_ / "nothere.txt").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_CONTAINS(missing.output, "cannot read it: No such file or directory");
  EXPECT_EQ(missing.output.find("loom: loaded"), std::string::npos) << "refused before the model loads";

  const fs::path model = dir_ / "model";
  const auto before = fs::last_write_time(model / "model.safetensors");
  LoomRun again = run_loom("mkmodel --output " + model.string());
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_CONTAINS(again.output, "already exists; add --force");
  EXPECT_EQ(fs::last_write_time(model / "model.safetensors"), before);
  const fs::path scratch = dir_ / "scratch_model";
  ASSERT_EQ(run_loom("mkmodel --output " + scratch.string()).exit_code, 0);
  LoomRun forced = run_loom("mkmodel --force --vocab 300 --output " + scratch.string());
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_CONTAINS(run_loom("inspect " + scratch.string()).output, "vocabulary:   300");

  const fs::path trace = write("trace.jsonl", "precious\n");
  LoomRun bad = run_loom("workload --kind chat --vocab 2 --output " + trace.string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  std::ifstream trace_in(trace);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(trace_in), {}), "precious\n");
  EXPECT_FALSE(fs::exists(trace.string() + ".partial"));
  EXPECT_EQ(run_loom("workload --kind chat --requests 3 --output " + trace.string()).exit_code, 0);
  std::ifstream written(trace);
  std::string first_line;
  std::getline(written, first_line);
  EXPECT_CONTAINS(first_line, "prompt_token_ids");
}

// Found by a hostile user: kv.cache_memory = "100GiB" or kv.num_blocks = 1e8 on the CPU ended in
// "internal error: std::bad_alloc", and 1e12 blocks blamed the lru evictor. The pool a key asks
// for is now compared with the memory there is, and the key is named with both figures.
TEST_F(CliGenerate, AKvPoolBeyondTheMachinesMemoryIsRefusedByItsKey) {
  for (const std::string set : {"kv.cache_memory=100TiB", "kv.num_blocks=100000000000", "kv.num_blocks=1000000000000"}) {
    LoomRun run = run_loom("generate --config " + config() + " -p hello --set " + set);
    EXPECT_EQ(run.exit_code, 2) << set << "\n" << run.output;
    EXPECT_CONTAINS(run.output, "[kv] " + set.substr(3, set.find('=') - 3) + ": ");
    EXPECT_CONTAINS(run.output, "available for them, room for at most");
    EXPECT_EQ(run.output.find("bad_alloc"), std::string::npos) << run.output;
  }
}

// Found by a hostile user: a 10 MB prompt held another request's first token back 18 s, all of it
// spent tokenizing a prompt the model could never read. Its beginning now proves it too long.
TEST_F(CliGenerate, AHugePromptFailsAloneAtOnceWithoutHoldingBackTheOthers) {
  std::string huge;
  while (huge.size() < 10'000'000) huge += "the cat sat on the mat. ";
  const std::string input_text = R"({"id": "short", "prompt": "Once upon a time", "max_tokens": 4})" "\n"
                                 R"({"id": "huge", "prompt": ")" + huge + "\"}\n" +
                                 R"({"id": "after", "prompt": "Hello", "max_tokens": 4})" "\n";
  const fs::path input = write("huge.jsonl", input_text);
  const fs::path output = dir_ / "huge_out.jsonl";
  LoomRun run = run_loom("generate --quiet --config " + config() + " --input " + input.string() + " --output " +
                         output.string());
  EXPECT_EQ(run.exit_code, 3) << run.output;
  std::ifstream results(output);
  int lines = 0;
  for (std::string line; std::getline(results, line); ++lines) {
    const nlohmann::json r = nlohmann::json::parse(line);
    if (r["id"] == "huge") {
      EXPECT_EQ(r["finish_reason"], "error");
      EXPECT_CONTAINS(r["error"].get<std::string>(), "the prompt is longer than the model's context");
    } else {
      EXPECT_EQ(r["finish_reason"], "length") << line;
      // Seconds before the fix; a loaded CI machine under a sanitizer still answers well within 2 s.
      EXPECT_LT(r["timings"]["ttft_ms"].get<double>(), 2000.0) << line;
    }
  }
  EXPECT_EQ(lines, 3);
}

TEST_F(CliGenerate, SystemPromptWorkloadTakesItsPromptCountLengthAndQuestionRange) {
  const fs::path trace = dir_ / "system.jsonl";
  LoomRun made = run_loom("workload --kind system-prompt --system-prompts 1 --system-tokens 300 --question-tokens 20:30 "
                          "--requests 12 --output " +
                          trace.string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::ifstream in(trace);
  std::string line;
  std::vector<std::vector<std::int32_t>> prompts;
  while (std::getline(in, line)) prompts.push_back(nlohmann::json::parse(line).at("prompt_token_ids"));
  ASSERT_EQ(prompts.size(), 12u);
  for (const auto& p : prompts) {
    EXPECT_GE(p.size(), 320u);
    EXPECT_LE(p.size(), 330u);
    EXPECT_TRUE(std::equal(p.begin(), p.begin() + 300, prompts[0].begin())) << "one system prompt, shared by all";
  }
  for (const char* bad : {"--kind chat --system-tokens 10", "--kind system-prompt --system-tokens 0",
                          "--kind system-prompt --system-prompts 0", "--kind system-prompt --question-tokens 9:3"}) {
    LoomRun refused = run_loom(std::string("workload ") + bad + " --output " + (dir_ / "refused.jsonl").string());
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
    EXPECT_FALSE(fs::exists(dir_ / "refused.jsonl")) << bad;
  }
}

TEST_F(CliGenerate, MkmodelRefusesALayerStdOutsideZeroToOneOrForLlama2cBeforeWriting) {
  for (const char* bad : {"--layer-std -0.5", "--layer-std 2", "--layer-std 1e-4 --format llama2c"}) {
    const fs::path out = dir_ / "layer_std_model";
    LoomRun run = run_loom(std::string("mkmodel ") + bad + " --output " + out.string());
    EXPECT_EQ(run.exit_code, 2) << bad << ": " << run.output;
    EXPECT_CONTAINS(run.output, "--layer-std");
    EXPECT_FALSE(fs::exists(out)) << bad;
  }
  LoomRun made = run_loom("mkmodel --layer-std 0 --output " + (dir_ / "zero_layers").string());
  EXPECT_EQ(made.exit_code, 0) << made.output;
}

// Found measuring expert parallelism: a Mixtral made with --intermediate kept its experts at the
// tiny shape's width while config.json said otherwise, and no command could load it.
TEST_F(CliGenerate, MkmodelIntermediateWidensMixtralsExpertsSoTheModelLoads) {
  const fs::path out = dir_ / "wide_mixtral";
  LoomRun made = run_loom("mkmodel --arch mixtral --intermediate 192 --output " + out.string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  LoomRun inspected = run_loom("inspect " + out.string());
  EXPECT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_CONTAINS(inspected.output, "192");
}

// Found by a hostile user: mkmodel with an absurd shape wrote until the disk was full and left the
// partial file; `workload --requests` out of range ended in std::bad_alloc; a folder given as
// --config ran with every default. Sizes are now checked first, a failed write (a file-size limit
// standing in for a full disk) leaves nothing, and a folder is named as one.
TEST_F(CliGenerate, ImpossibleSizesAreRefusedFirstAndAFailedModelWriteLeavesNothing) {
  const fs::path huge = dir_ / "huge_model";
  LoomRun absurd = run_loom("mkmodel --hidden 1000000 --layers 1000 --output " + huge.string());
  EXPECT_EQ(absurd.exit_code, 2) << absurd.output;
  EXPECT_CONTAINS(absurd.output, "free; choose a smaller shape or another place");
  EXPECT_FALSE(fs::exists(huge));
  const fs::path nested = dir_ / "new" / "nested" / "model";  // folders made as mkdir -p would
  LoomRun made = run_loom("mkmodel --output " + nested.string());
  EXPECT_EQ(made.exit_code, 0) << made.output;
  EXPECT_TRUE(fs::exists(nested / "config.json"));

  for (const char* format : {"hf", "llama2c"}) {
    const fs::path cut = dir_ / (std::string("cut_") + format);
    const std::string command = "ulimit -f 200; trap '' XFSZ; exec " + std::string(LOOM_BINARY_DIR) +
                                "/bin/loom mkmodel --preset tinystories-15m --format " + format + " --output " +
                                cut.string() + " 2>/dev/null";
    const int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1) << format;
    for (const auto& entry : fs::directory_iterator(dir_))
      EXPECT_EQ(entry.path().filename().string().find("cut_"), std::string::npos)
          << format << ": left " << entry.path();
  }

  for (const char* count : {"0", "-1", "99999999999"}) {
    LoomRun bad = run_loom(std::string("workload --kind chat --requests ") + count + " --output " +
                           (dir_ / "trace.jsonl").string());
    EXPECT_EQ(bad.exit_code, 2) << bad.output;
    EXPECT_CONTAINS(bad.output, std::string("--requests ") + count + ": expected 1 to 1000000");
  }

  fs::create_directories(dir_ / "a_folder");
  LoomRun folder = run_loom("generate --config " + (dir_ / "a_folder").string() + " -p hello");
  EXPECT_EQ(folder.exit_code, 2) << folder.output;
  EXPECT_CONTAINS(folder.output, "is a folder; give a TOML file in it");
}

// Found by a hostile user: under a process limit (ulimit -u, normal in containers) 64 kernel
// threads aborted loom ("terminate called without an active exception"). Now it is a clear error
// naming the key, exit code 2, before the model loads. The limit is set in a child that runs as
// nobody when the test runs as root (root is exempt from it).
TEST_F(CliGenerate, MoreThreadsThanTheProcessLimitAllowsIsAClearErrorNotAnAbort) {
  const fs::path input = write("limit.txt", "Hello there\n");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    // Room for the sanitizers' helper threads, not for 64; the default pool is one thread.
    const rlimit limit{6, 6};
    setenv("LOOM_NUM_THREADS", "1", 1);
    if (setrlimit(RLIMIT_NPROC, &limit) != 0) _exit(100);
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(101);
    const std::string loom = std::string(LOOM_BINARY_DIR) + "/bin/loom";
    execl(loom.c_str(), loom.c_str(), "generate", "--config", config().c_str(), "--input", input.c_str(), "--set",
          "engine.num_threads=64", static_cast<char*>(nullptr));
    _exit(102);
  }
  close(out[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;) output.append(buffer, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "loom died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "\n"
                                 << output;
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
  EXPECT_CONTAINS(output, "num_threads");
  EXPECT_CONTAINS(output, "of the 64 threads asked for the CPU kernels could be started");
  EXPECT_EQ(output.find("terminate called"), std::string::npos) << output;
}

// Runs `loom generate` in a child with `setup` applied first (limits, signal dispositions);
// returns its pid and a pipe that carries its standard error.
std::pair<pid_t, int> spawn_generate(const std::vector<std::string>& args, void (*setup)()) {
  int err[2];
  if (pipe(err) != 0) return {-1, -1};
  const pid_t child = fork();
  if (child == 0) {
    dup2(err[1], 2);
    close(err[0]);
    setup();
    const std::string loom = std::string(LOOM_BINARY_DIR) + "/bin/loom";
    std::vector<char*> argv{const_cast<char*>(loom.c_str()), const_cast<char*>("generate")};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(loom.c_str(), argv.data());
    _exit(102);
  }
  close(err[1]);
  return {child, err[0]};
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  close(fd);
  return text;
}

// Every line of `file` ends in a newline and is a JSON object; returns how many.
std::size_t whole_json_lines(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line is torn: ..." << text.substr(text.size() - 80);
  std::size_t lines = 0;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line); ++lines)
    EXPECT_TRUE(nlohmann::json::parse(line, nullptr, false).is_object()) << "line " << lines + 1 << ": " << line;
  return lines;
}

// Found by a hostile user: a run stopped by a signal said nothing, and a full disk left half a
// JSON line at the end of the results. SIGTERM now ends the run after its current step with exit
// code 143, saying how many whole lines it wrote; a write that fails part-way (here a file-size
// limit, as a full disk) is cut back to the complete lines, so the file stays valid JSONL.
TEST_F(CliGenerate, ASignalOrAFullDiskLeavesOnlyWholeResultLinesAndSaysHowMany) {
  std::string prompts;
  for (int i = 0; i < 300; ++i) prompts += "Once upon a time " + std::to_string(i) + "\n";
  const fs::path input = write("many.txt", prompts);
  const fs::path stopped = dir_ / "stopped.jsonl";
  fs::remove(stopped);
  auto [child, err] = spawn_generate({"--config", config(), "--input", input.string(), "--output", stopped.string(),
                                      "--max-tokens", "120", "--set", "engine.max_num_seqs=1"},
                                     [] {});
  ASSERT_GT(child, 0);
  for (int i = 0; i < 2000 && (!fs::exists(stopped) || fs::file_size(stopped) < 2000); ++i) usleep(10000);
  kill(child, SIGTERM);
  const std::string said = read_all(err);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << said;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << said;
  const std::size_t lines = whole_json_lines(stopped);
  EXPECT_GT(lines, 0u);
  EXPECT_LT(lines, 300u) << "the run ended before the signal";
  EXPECT_CONTAINS(said, "stopped by SIGTERM: " + std::to_string(lines) + " result lines written to " + stopped.string());

  const fs::path full = dir_ / "full.jsonl";
  fs::remove(full);
  auto [limited, limited_err] = spawn_generate(
      {"--config", config(), "--input", input.string(), "--output", full.string(), "--max-tokens", "40"}, [] {
        signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG, as on a full disk
        const rlimit limit{5000, 5000};
        setrlimit(RLIMIT_FSIZE, &limit);
      });
  ASSERT_GT(limited, 0);
  const std::string full_said = read_all(limited_err);
  ASSERT_EQ(waitpid(limited, &status, 0), limited);
  ASSERT_TRUE(WIFEXITED(status)) << full_said;
  EXPECT_NE(WEXITSTATUS(status), 0) << full_said;
  const std::size_t kept = whole_json_lines(full);
  EXPECT_GT(kept, 0u);
  EXPECT_LE(fs::file_size(full), 5000u);
  EXPECT_CONTAINS(full_said, "keeps the " + std::to_string(kept) + " complete result lines");
}

TEST(CliStories260K, GenerateReproducesTheReferenceFromTokenIds) {
  const fs::path models = test_models_dir();
  nlohmann::json cases = nlohmann::json::parse(std::ifstream(models / "stories260K.greedy.json"));
  const fs::path dir = fs::temp_directory_path() / ("loom_cli_stories_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "run.toml") << "[model]\npath = \"" << (models / "stories260K.bin").string() << "\"\n";
  {
    std::ofstream input(dir / "in.jsonl");
    for (const auto& [name, item] : cases.items())
      input << nlohmann::json{{"id", name},
                              {"prompt_token_ids", item["prompt_token_ids"]},
                              {"max_tokens", item["max_new_tokens"]},
                              {"ignore_eos", true}}
                   .dump()
            << "\n";
  }
  LoomRun run = run_loom("generate --quiet --config " + (dir / "run.toml").string() + " --input " +
                         (dir / "in.jsonl").string() + " --output " + (dir / "out.jsonl").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream out(dir / "out.jsonl");
  int checked = 0;
  for (std::string line; std::getline(out, line); ++checked) {
    auto result = nlohmann::json::parse(line);
    EXPECT_EQ(result["token_ids"], cases[result["id"].get<std::string>()]["output_token_ids"]) << result["id"];
  }
  EXPECT_EQ(checked, 3);

  LoomRun bench = run_loom("bench --json --config " + (dir / "run.toml").string() +
                           " --num-prompts 4 --input-len 4:16 --output-len 8 2>/dev/null");
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  auto report = nlohmann::json::parse(bench.output.substr(bench.output.find('{')));
  EXPECT_EQ(report["output_tokens"], 32);
  EXPECT_GT(report["output_tok_s"].get<double>(), 0);
  EXPECT_GT(report["achieved_gb_s"].get<double>(), 0);
  // Bytes: every step reads the weights at least; flops: at least 2 per weight per token.
  EXPECT_GE(report["bytes_moved"].get<double>(), report["weight_bytes"].get<double>() * report["steps"].get<double>());
  EXPECT_GE(report["flops"].get<double>(),
            report["weight_bytes"].get<double>() / 4 * 2 *
                (report["output_tokens"].get<double>() + report["prompt_tokens"].get<double>()) * 0.5);

  // Several workloads on one loaded model: a JSON array, one object per --run, in order.
  LoomRun runs =
      run_loom("bench --json --config " + (dir / "run.toml").string() + " --run 1,8,4 --run 3,4:6,2 2>/dev/null");
  ASSERT_EQ(runs.exit_code, 0) << runs.output;
  auto array = nlohmann::json::parse(runs.output.substr(runs.output.find('[')));
  ASSERT_EQ(array.size(), 2u);
  EXPECT_EQ(array[0]["run"], "1,8,4");
  EXPECT_EQ(array[0]["output_tokens"], 4);
  EXPECT_EQ(array[1]["output_tokens"], 6);
  LoomRun mixed = run_loom("bench --config " + (dir / "run.toml").string() + " --run 1,8,4 --num-prompts 2 2>&1");
  EXPECT_EQ(mixed.exit_code, 2) << mixed.output;
  EXPECT_CONTAINS(mixed.output, "either --run");
  LoomRun malformed = run_loom("bench --config " + (dir / "run.toml").string() + " --run 1,8 2>&1");
  EXPECT_EQ(malformed.exit_code, 2) << malformed.output;
  EXPECT_CONTAINS(malformed.output, "PROMPTS,INPUT_LEN,OUTPUT_LEN");

  // A workload from a file: the reference requests, with the n-gram drafter's figures.
  LoomRun file = run_loom("bench --json --config " + (dir / "run.toml").string() + " --input " +
                          (dir / "in.jsonl").string() + " --set speculative.plugin=ngram 2>/dev/null");
  ASSERT_EQ(file.exit_code, 0) << file.output;
  auto from_file = nlohmann::json::parse(file.output.substr(file.output.find('{')));
  int expected_tokens = 0;
  for (const auto& [name, item] : cases.items()) expected_tokens += item["max_new_tokens"].get<int>();
  EXPECT_EQ(from_file["output_tokens"], expected_tokens);
  EXPECT_EQ(from_file["num_prompts"], 3);
  EXPECT_EQ(from_file["run"], (dir / "in.jsonl").string());
  EXPECT_GT(from_file["accepted_draft_tokens"].get<int>(), 0) << "the reference continuations repeat themselves";
  LoomRun both = run_loom("bench --config " + (dir / "run.toml").string() + " --input " + (dir / "in.jsonl").string() +
                          " --run 1,8,4 2>&1");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_CONTAINS(both.output, "either --input");
  LoomRun missing = run_loom("bench --config " + (dir / "run.toml").string() + " --input " +
                             (dir / "nowhere.jsonl").string() + " 2>&1");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_CONTAINS(missing.output, "nowhere.jsonl: cannot open it");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace loom::testing
