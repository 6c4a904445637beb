// docs/reliability.md quotes an example error for every input Loom accepts. None is typed by
// hand: each test here writes a bad input into a scratch folder, runs the loom binary on it as a
// user would, takes the message the user sees, and checks that the doc quotes exactly that
// between the markers of its section:
//   <!-- BEGIN GENERATED <section> ... -->  ...  <!-- END GENERATED <section> -->
// Every example also states the exit code it must end with and words its message must contain,
// so a scenario that stops triggering the check it documents fails here. When a message changes
// on purpose, rewrite the doc's examples with
//   LOOM_UPDATE_DOCS=1 build/tests/test_reliability_doc
// (run it alone: the tests then write docs/reliability.md).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/io/random_llama2c.h"
#include "core/io/random_model.h"
#include "support/expect_error.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kDoc = fs::path(LOOM_SOURCE_DIR) / "docs" / "reliability.md";

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Placeholders usable in commands: expanded when run, shown as written in the doc.
const std::pair<std::string, std::string> kPlaceholders[] = {
    {"<plugins>", std::string(LOOM_BINARY_DIR) + "/lib/loom/plugins"},
    {"<fixtures>", std::string(LOOM_FIXTURE_PLUGIN_DIR)},
    {"<faults>", std::string(LOOM_FAULT_PLUGIN_DIR)},
};

// One section of the doc: a scratch folder holding the inputs, and the examples run in it.
class Section {
 public:
  explicit Section(std::string name) : name_(std::move(name)) {
    dir_ = fs::temp_directory_path() / ("loom_reliability_" + std::to_string(::getpid()) + "_" + name_);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Section() { fs::remove_all(dir_); }

  const fs::path& dir() const { return dir_; }
  void write(const std::string& name, const std::string& text) const { write_file(dir_ / name, text); }

  // A command that fails: the example is the error line it prints.
  void error(const std::string& what, const std::string& args, int exit_code, const std::string& expect) {
    Output run = loom(args);
    EXPECT_EQ(run.exit_code, exit_code) << what << "\n" << run.text;
    std::string message = error_line(run.text);
    EXPECT_CONTAINS(message, expect) << " (" << what << ")\n" << run.text;
    add(what, "$ loom " + args + "\n" + message + "\n(exit code " + std::to_string(run.exit_code) + ")");
  }

  // A request line that `loom generate` reports and skips: the example is that report.
  void skipped_line(const std::string& what, const std::string& args, const std::string& expect) {
    Output run = loom(args);
    EXPECT_EQ(run.exit_code, 0) << what << "\n" << run.text;
    std::string message;
    std::istringstream lines(run.text);
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with("loom generate: skipped ")) message = line;
    EXPECT_CONTAINS(message, expect) << " (" << what << ")\n" << run.text;
    add(what, "$ loom " + args + "\n" + message);
  }

  // A request that is served and fails alone: the example is the `error` of its result line. The
  // run writes every result and exits 3 (requests failed).
  void failed_request(const std::string& what, const std::string& args, const std::string& id,
                      const std::string& expect) {
    fs::remove(dir_ / "results.jsonl");
    Output run = loom(args + " --output results.jsonl");
    EXPECT_EQ(run.exit_code, 3) << what << "\n" << run.text;
    std::string message;
    std::ifstream results(dir_ / "results.jsonl");
    for (std::string line; std::getline(results, line);) {
      nlohmann::json result = nlohmann::json::parse(line);
      if (result["id"] != id) continue;
      EXPECT_EQ(result["finish_reason"], "error") << what;
      message = "\"error\": " + nlohmann::json(normalise(result.value("error", ""))).dump();
      break;
    }
    EXPECT_CONTAINS(message, expect) << " (" << what << ")\n" << run.text;
    add(what, "$ loom " + args + " --output results.jsonl\n" + "results.jsonl, request \"" + id + "\": " +
                  "\"finish_reason\": \"error\", " + message + "\n(exit code 3)");
  }

  // Compares the examples with the doc's generated block, or rewrites the block.
  void check_doc() const {
    const std::string begin = "<!-- BEGIN GENERATED " + name_ + " ";
    const std::string end = "<!-- END GENERATED " + name_ + " -->";
    std::string doc = read_file(kDoc);
    std::size_t at = doc.find(begin);
    ASSERT_NE(at, std::string::npos) << kDoc << " has no '" << begin << "...-->' marker";
    std::size_t from = doc.find("-->\n", at);
    std::size_t to = doc.find(end, at);
    ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to)
        << kDoc << ": the markers of section " << name_ << " are broken";
    from += 4;
    const std::string block = "```text\n" + text_ + "```\n";
    if (std::getenv("LOOM_UPDATE_DOCS")) {
      doc.replace(from, to - from, block);
      write_file(kDoc, doc);
      std::cout << "updated section " << name_ << " of " << kDoc << "\n";
      return;
    }
    EXPECT_EQ(doc.substr(from, to - from), block)
        << kDoc << ": the examples of section '" << name_
        << "' are not what Loom prints now. If the change is intended, run\n  LOOM_UPDATE_DOCS=1 " << LOOM_BINARY_DIR
        << "/tests/test_reliability_doc\nand commit docs/reliability.md.";
  }

 private:
  struct Output {
    int exit_code = -1;
    std::string text;  // stdout and stderr
  };

  Output loom(const std::string& args) const {
    std::string expanded = args;
    for (const auto& [name, path] : kPlaceholders) replace_all(expanded, name, path);
    // In the scratch folder, so inputs are named as a user would name them; no LOOM_PLUGIN_PATH.
    const std::string command = "cd '" + dir_.string() + "' && env -u LOOM_PLUGIN_PATH '" + LOOM_BINARY_DIR +
                                "/bin/loom' " + expanded + " 2>&1";
    Output out;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return out;
    std::array<char, 4096> buffer;
    while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) out.text.append(buffer.data(), n);
    const int status = pclose(pipe);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    out.text = normalise(out.text);
    return out;
  }

  // Paths that depend on the machine or the build, written the way the doc shows them.
  std::string normalise(std::string text) const {
    replace_all(text, dir_.string() + "/", "");
    replace_all(text, dir_.string(), ".");
    for (const auto& [name, path] : kPlaceholders) {
      replace_all(text, fs::weakly_canonical(path).string(), name);
      replace_all(text, path, name);
    }
    replace_all(text, fs::weakly_canonical(LOOM_BINARY_DIR).string(), "<build>");
    replace_all(text, LOOM_BINARY_DIR, "<build>");
    return text;
  }

  // The line a user reads: "loom <command>: error: ...", else the first line of the output.
  static std::string error_line(const std::string& text) {
    std::istringstream lines(text);
    std::string first;
    for (std::string line; std::getline(lines, line);) {
      if (first.empty()) first = line;
      if (line.starts_with("loom") && line.find("error: ") != std::string::npos) return line;
    }
    return first;
  }

  void add(const std::string& what, const std::string& example) {
    if (!text_.empty()) text_ += "\n";
    text_ += "# " + what + "\n" + example + "\n";
  }

  std::string name_;
  fs::path dir_;
  std::string text_;
};

// A tiny Llama with the Llama-2 tokenizer, and a run.toml that uses it.
void write_model_and_config(const Section& s, bool with_tokenizer = true) {
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(io::Architecture::kLlama);
  if (with_tokenizer) {
    spec.config.vocab_size = 32000;  // the Llama-2 tokenizer's
    spec.tokenizer_model = test_models_dir() / "llama2-tokenizer.model";
  }
  io::write_random_model(spec, s.dir() / "model");
  s.write("run.toml", "[model]\npath = \"model\"\n[sampling]\nmax_tokens = 4\n");
  s.write("prompts.txt", "Once upon a time\n");
}

TEST(ReliabilityDoc, CommandLine) {
  Section s("cli");
  write_model_and_config(s);
  s.error("an unknown command", "frobnicate", 2, "unknown command 'frobnicate'");
  s.error("an unknown option", "generate --config run.toml --input prompts.txt --temprature 0.5", 2,
          "--temprature");
  s.error("a required option missing", "generate --input prompts.txt", 2, "--config FILE or -m/--model");
  s.error("an option value outside its choices", "generate --config run.toml --input prompts.txt --input-format xml",
          2, "--input-format");
  s.error("a range the wrong way round", "bench --config run.toml --input-len 64:16", 2, "MIN <= MAX");
  s.error("an input file that cannot be read", "generate --config run.toml --input missing.txt", 2,
          "--input missing.txt: cannot read it: No such file or directory");
  s.error("results that would overwrite the requests",
          "generate --config run.toml --input prompts.txt --output prompts.txt", 2, "is the --input file");
  s.error("a model folder that already exists", "mkmodel --output model", 2, "add --force to replace it");
  s.error("a trace of more requests than fit in memory", "workload --kind chat --requests 99999999999 --output w.jsonl",
          2, "--requests 99999999999: expected 1 to 1000000");
  s.check_doc();
}

TEST(ReliabilityDoc, ConfigFilesAndOverrides) {
  Section s("config");
  write_model_and_config(s);
  s.error("a config file that does not exist", "config --explain nowhere.toml", 2, "nowhere.toml");
  fs::create_directories(s.dir() / "configs");
  s.error("a folder given as the config file", "config --explain configs", 2, "is a folder; give a TOML file in it");
  s.write("syntax.toml", "[engine]\nmax_num_seqs = = 4\n");
  s.error("syntax.toml: max_num_seqs = = 4", "config --explain syntax.toml", 2, "syntax.toml:2");
  s.write("section.toml", "[evictr]\nplugin = \"lru\"\n");
  s.error("section.toml: [evictr] (a misspelt section)", "config --explain section.toml", 2, "Did you mean 'evictor'");
  s.write("key.toml", "[engine]\nmax_num_seq = 8\n");
  s.error("key.toml: max_num_seq = 8 (a misspelt key)", "config --explain key.toml", 2, "Did you mean 'max_num_seqs'");
  s.write("type.toml", "[engine]\nmax_num_seqs = \"many\"\n");
  s.error("type.toml: max_num_seqs = \"many\" (a string for an integer)", "config --explain type.toml", 2,
          "max_num_seqs");
  s.write("range.toml", "[kv]\nblock_size = 24\n");
  s.error("range.toml: block_size = 24 (not a power of two)", "config --explain range.toml", 2, "power of two");
  s.write("size.toml", "[kv]\ncache_memory = \"2 parsecs\"\n");
  s.error("size.toml: cache_memory = \"2 parsecs\" (not a size)", "config --explain size.toml", 2, "cache_memory");
  s.error("an override that is not section.key=value", "config --explain run.toml --set engine.max_num_seqs", 2,
          "expected section.key=value");
  s.error("an override of a key that does not exist", "config --explain run.toml --set engine.max_num_seq=8", 2,
          "--set engine.max_num_seq=8");
  s.write("nomodel.toml", "[engine]\nmax_num_seqs = 8\n");
  s.error("nomodel.toml: no [model] path", "generate --config nomodel.toml --input prompts.txt", 2, "[model] path");
  s.error("a model path that does not exist", "generate --config run.toml --input prompts.txt --set model.path=nowhere",
          2, "does not exist");
  // (engine.device = "cuda" where no GPU can serve it is tested in engine_invariants_test: its
  // message depends on the build, with or without CUDA, so it cannot be one quoted example.)
  s.error("a device that does not exist", "generate --config run.toml --input prompts.txt --set engine.device=tpu",
          2, "device");
  s.check_doc();
}

TEST(ReliabilityDoc, PluginLibraries) {
  Section s("plugins");
  write_model_and_config(s);
  s.write("libloom_evictor_junk.so", "this is a text file, not an ELF library\n");
  s.error("a plugin name that is not found", "config --explain run.toml --set evictor.plugin=lur", 2,
          "Did you mean 'lru'");
  s.error("a plugin path that does not exist", "config --explain run.toml --set evictor.plugin=./libmine.so", 2,
          "does not exist");
  s.error("a file that is not a shared library",
          "config --explain run.toml --set evictor.plugin=./libloom_evictor_junk.so", 2, "cannot load");
  s.error("a shared library that is not a Loom plugin",
          "config --explain run.toml --set evictor.plugin=<fixtures>/libloom_evictor_noentry.so", 2,
          "is not a Loom plugin");
  s.error("a plugin built for another ABI version",
          "config --explain run.toml --set evictor.plugin=<fixtures>/libloom_evictor_future.so", 2, "ABI version");
  s.error("a plugin of the wrong kind",
          "config --explain run.toml --set scheduler.plugin=<plugins>/libloom_evictor_lru.so", 2,
          "is an evictor plugin");
  s.error("a key the plugin does not declare", "config --explain run.toml --set scheduler.max_prefil_chunk=4", 2,
          "Did you mean 'max_prefill_chunk'");
  s.error("a value the plugin refuses",
          "generate --config run.toml --input prompts.txt --set scheduler.max_prefill_chunk=-1", 2,
          "max_prefill_chunk");
  s.error("a plugin that fails to start",
          "generate --config run.toml --input prompts.txt --set evictor.plugin=<fixtures>/libloom_evictor_throwing.so",
          2, "failed to start");
  s.check_doc();
}

TEST(ReliabilityDoc, ModelFiles) {
  Section s("model");
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(io::Architecture::kLlama);
  spec.config.tie_word_embeddings = false;
  // One good model, copied and broken one way per example.
  const fs::path good = s.dir() / "good";
  io::write_random_model(spec, good);
  auto broken = [&](const std::string& name, const std::string& file, const std::string& from,
                    const std::string& to) {
    fs::copy(good, s.dir() / name, fs::copy_options::recursive);
    std::string data = read_file(s.dir() / name / file);
    auto at = data.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) data.replace(at, from.size(), to);
    write_file(s.dir() / name / file, data);
  };
  s.error("a model path that does not exist", "inspect nowhere", 2, "nowhere");
  fs::create_directories(s.dir() / "empty");
  s.error("a directory without config.json", "inspect empty", 2, "config.json");
  broken("notjson", "config.json", "{", "{,");
  s.error("a config.json that is not JSON", "inspect notjson", 2, "config.json");
  broken("gpt2", "config.json", "LlamaForCausalLM", "GPT2LMHeadModel");
  s.error("an architecture Loom does not run", "inspect gpt2", 2, "GPT2LMHeadModel");
  broken("heads", "config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
  s.error("attention heads that do not divide into KV heads", "inspect heads", 2, "num_key_value_heads");
  broken("layers", "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
  s.error("a tensor missing from the safetensors", "inspect layers", 2, "model.layers.2.");
  broken("shape", "config.json", "\"intermediate_size\": 128", "\"intermediate_size\": 96");
  s.error("a tensor whose shape disagrees with config.json", "inspect shape", 2, "96");
  broken("dtype", "model.safetensors", "\"F32\"", "\"I32\"");
  s.error("a tensor of an element type Loom does not read", "inspect dtype", 2, "I32");
  fs::copy(good, s.dir() / "truncated", fs::copy_options::recursive);
  const std::string weights = read_file(good / "model.safetensors");
  write_file(s.dir() / "truncated" / "model.safetensors", weights.substr(0, weights.size() / 2));
  s.error("a truncated safetensors file", "inspect truncated", 2, "model.safetensors");
  io::write_random_llama2c(spec.config, 1, s.dir() / "model.bin");
  const std::string bin = read_file(s.dir() / "model.bin");
  s.write("short.bin", bin.substr(0, bin.size() - 100));
  s.error("a llama2.c checkpoint of the wrong size", "inspect short.bin", 2, "short.bin");
  s.write("v1.bin", "24ka" + bin.substr(4));  // the magic 0x616b3432 of version 1/2 exports, little-endian
  s.error("a llama2.c checkpoint of a later export version", "inspect v1.bin", 2, "v1.bin");
  s.check_doc();
}

TEST(ReliabilityDoc, Tokenizers) {
  Section s("tokenizer");
  write_model_and_config(s);
  s.error("a tokenizer file that does not exist",
          "generate --config run.toml --input prompts.txt --set model.tokenizer=nope.model", 2, "nope.model");
  std::string garbage(4096, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 2654435761u) >> 13);
  s.write("garbage.model", garbage);
  s.error("a file that is not a sentencepiece model",
          "generate --config run.toml --input prompts.txt --set model.tokenizer=garbage.model", 2, "garbage.model");
  io::RandomModelSpec small;
  small.config = io::tiny_config(io::Architecture::kLlama);  // a 256-token vocabulary
  io::write_random_model(small, s.dir() / "small");
  s.error("the tokenizer of another model (32 000 pieces for a 256-token vocabulary)",
          "generate --config run.toml --input prompts.txt --set model.path=small --set model.tokenizer=model/tokenizer.model",
          2, "it belongs to another model");
  s.check_doc();
}

TEST(ReliabilityDoc, Requests) {
  Section s("requests");
  write_model_and_config(s);
  const std::string generate = "generate --config run.toml --input ";
  auto bad_line = [&](const std::string& line, const std::string& expect) {
    s.write("requests.jsonl", "{\"prompt\": \"Once upon a time\"}\n" + line + "\n");
    s.skipped_line("requests.jsonl line 2: " + line, generate + "requests.jsonl", expect);
  };
  bad_line("{\"prompt\": \"Once upon", "not valid JSON");
  bad_line("[\"Once upon a time\"]", "object");
  bad_line("{\"prompt\": \"Once\", \"temprature\": 0.5}", "Did you mean 'temperature'");
  bad_line("{\"prompt\": \"Once\", \"max_tokens\": \"8\"}", "\"max_tokens\"");
  bad_line("{\"prompt\": \"Once\", \"prompt_token_ids\": [1, 2]}", "not both");
  bad_line("{\"max_tokens\": 8}", "prompt");
  bad_line("{\"prompt_token_ids\": [1, \"2\"]}", "prompt_token_ids[1]");
  bad_line("{\"prompt\": \"Once\", \"max_tokens\": -3}", "max_tokens");
  bad_line("{\"prompt\": \"Once\", \"n\": 0}", "\"n\"");
  bad_line("{\"prompt_token_ids\": []}", "must not be empty");
  s.write("dup.jsonl", "{\"id\": \"q1\", \"prompt\": \"Once\"}\n{\"id\": \"q1\", \"prompt\": \"Twice\"}\n");
  s.skipped_line("dup.jsonl: the id \"q1\" on lines 1 and 2", generate + "dup.jsonl", "duplicate id");
  s.write("fail.jsonl", "{\"prompt\": \"Once\", \"top_k\": 1.5}\n");
  s.error("fail.jsonl: {\"prompt\": \"Once\", \"top_k\": 1.5}, with --on-bad-line fail",
          generate + "fail.jsonl --on-bad-line fail", 2, "fail.jsonl:1");

  // Lines that parse but cannot be served: the request fails alone, the run goes on.
  auto served = [&](const std::string& what, const std::string& line, const std::string& expect,
                    const std::string& extra = "") {
    s.write("requests.jsonl", "{\"id\": \"ok\", \"prompt\": \"Once upon a time\"}\n" + line + "\n");
    s.failed_request(what.empty() ? "requests.jsonl line 2: " + line : what, generate + "requests.jsonl" + extra, "bad",
                     expect);
  };
  served("", "{\"id\": \"bad\", \"prompt_token_ids\": [1, 99999]}", "outside the vocabulary");
  std::string long_prompt = "[1";
  for (int i = 0; i < 299; ++i) long_prompt += ", 450";
  served("requests.jsonl line 2: a prompt of 300 token ids; the model's context is 256",
         "{\"id\": \"bad\", \"prompt_token_ids\": " + long_prompt + "]}", "the prompt has 300 tokens");
  served("", "{\"id\": \"bad\", \"prompt\": \"Once\", \"temperature\": -1}", "'temperature' = -1");
  served("", "{\"id\": \"bad\", \"prompt\": \"Once\", \"top_p\": 0}", "'top_p' = 0");
  served("", "{\"id\": \"bad\", \"prompt\": \"Once\", \"min_tokens\": 9, \"max_tokens\": 4}", "min_tokens");
  served("requests.jsonl line 2: 100 prompt tokens and max_tokens 20, with a KV pool of 4 blocks of 16 tokens",
         "{\"id\": \"bad\", \"prompt_token_ids\": " + long_prompt.substr(0, 2 + 5 * 99) + "], \"max_tokens\": 20}",
         "blocks", " --set kv.num_blocks=4");
  s.check_doc();
}

TEST(ReliabilityDoc, RequestsWithoutATokenizer) {
  Section s("no-tokenizer");
  write_model_and_config(s, /*with_tokenizer=*/false);
  s.write("requests.jsonl", "{\"id\": \"bad\", \"prompt\": \"Once upon a time\"}\n");
  s.failed_request("requests.jsonl: a text prompt, for a model without tokenizer.model",
                   "generate --config run.toml --input requests.jsonl", "bad", "no tokenizer");
  s.check_doc();
}

TEST(ReliabilityDoc, WorkloadFiles) {
  Section s("workloads");
  write_model_and_config(s);
  const std::string ab = "ab --config run.toml --vary evictor.plugin=lru,lfu --report report --workload ";
  s.write("trace.jsonl", "{\"prompt_token_ids\": [1, 2, 3], \"arrival_time\": 0}\n"
                         "{\"prompt_token_ids\": [1, 2, 3], \"arrival_time\": -2}\n");
  s.error("trace.jsonl line 2: {\"prompt_token_ids\": [1, 2, 3], \"arrival_time\": -2}", ab + "trace.jsonl", 2,
          "trace.jsonl:2");
  s.error("a workload that is neither a file nor a kind", ab + "chatty", 2, "not a workload kind");
  s.error("loom workload: an unknown kind", "workload --kind chatty --output w.jsonl", 2, "--kind chatty");
  s.error("a report folder that is a file (refused before any arm runs)",
          "ab --config run.toml --vary evictor.plugin=lru,lfu --workload chat --report prompts.txt", 2,
          "--report prompts.txt: is a file; give a folder");
  s.check_doc();
}

TEST(ReliabilityDoc, PluginFailuresAtRunTime) {
  Section s("faults");
  write_model_and_config(s);
  s.write("requests.jsonl", "{\"id\": \"q1\", \"prompt\": \"Once upon a time\"}\n");
  s.failed_request("a scheduler whose schedule() always throws (a test plugin wrapping fcfs)",
                   "generate --config run.toml --input requests.jsonl"
                   " --set scheduler.plugin=<faults>/libloom_scheduler_faulty.so"
                   " --set scheduler.inner=<plugins>/libloom_scheduler_fcfs.so --set scheduler.throw_rate=1.0",
                   "q1", "8 engine steps in a row failed");
  s.failed_request("an allocator whose commit() always throws (a test plugin wrapping paged)",
                   "generate --config run.toml --input requests.jsonl"
                   " --set kv.plugin=<faults>/libloom_kv_allocator_faulty.so"
                   " --set kv.inner=<plugins>/libloom_kv_allocator_paged.so --set kv.throw_rate=1.0"
                   " --set kv.throw_calls=commit",
                   "q1", "4 times in a row");
  s.check_doc();
}

}  // namespace
}  // namespace loom::testing
