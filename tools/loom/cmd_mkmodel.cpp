// `loom mkmodel`: writes a random-weight model of any supported architecture and shape, as a
// Hugging Face directory (config.json + safetensors, optionally sharded) or a llama2.c .bin.
// Tests and GPU benchmarks use it; Loom never downloads a model.
#include <filesystem>
#include <iostream>
#include <optional>

#include "core/config/byte_size.h"
#include "core/io/dtype.h"
#include "core/io/model_config.h"
#include "core/io/random_llama2c.h"
#include "core/io/random_model.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/file_checks.h"

namespace loom::cli {

namespace {

using io::Architecture;
using io::ModelConfig;

// Shapes people benchmark with. `tiny` is the architecture's own small test shape.
std::optional<ModelConfig> preset(const std::string& name, Architecture arch) {
  ModelConfig c = io::tiny_config(arch);
  auto dense = [&](std::int64_t hidden, std::int64_t inter, std::int64_t layers, std::int64_t heads,
                   std::int64_t kv_heads, std::int64_t vocab, std::int64_t max_pos) {
    c.hidden_size = hidden;
    c.intermediate_size = inter;
    c.num_hidden_layers = layers;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.head_dim = hidden / heads;
    c.vocab_size = vocab;
    c.max_position_embeddings = max_pos;
    if (c.is_moe()) c.moe_intermediate_size = inter;
  };
  if (name == "tiny") return c;
  // The TinyStories models share the embedding with the classifier, as llama2.c's do.
  if (name == "tinystories-15m") dense(288, 768, 6, 6, 6, 32000, 256), c.tie_word_embeddings = true;
  else if (name == "tinystories-110m") dense(768, 2048, 12, 12, 12, 32000, 1024), c.tie_word_embeddings = true;
  else if (name == "llama-2-7b") dense(4096, 11008, 32, 32, 32, 32000, 4096), c.tie_word_embeddings = false;
  else if (name == "llama-3-8b") dense(4096, 14336, 32, 32, 8, 128256, 8192), c.tie_word_embeddings = false;
  else return std::nullopt;
  c.rms_norm_eps = 1e-5;
  return c;
}

}  // namespace

int run_mkmodel(std::span<const std::string> args) {
  std::string arch_name = "llama", preset_name = "tiny", output, dtype_name = "f32", tokenizer, format = "hf";
  std::uint64_t seed = 0;
  int shards = 1;
  float layer_std = -1.0f;
  std::int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0,
               max_position = 0;
  bool tied = false, untied = false, force = false;
  po::options_description options("loom mkmodel");
  options.add_options()
      ("output,o", po::value(&output)->required(), "directory to write (a .bin file with --format llama2c)")
      ("arch", po::value(&arch_name), "llama | mistral | qwen2 | qwen3 | mixtral | qwen2_moe")
      ("preset", po::value(&preset_name), "tiny | tinystories-15m | tinystories-110m | llama-2-7b | llama-3-8b")
      ("dtype", po::value(&dtype_name), "element type in the files: f32 | f16 | bf16")
      ("format", po::value(&format), "hf (config.json + safetensors) | llama2c (.bin, f32)")
      ("seed", po::value(&seed), "seed of the weights")
      ("shards", po::value(&shards), "number of safetensors files (with an index when > 1)")
      ("tokenizer", po::value(&tokenizer), "copy this tokenizer.model (or tokenizer.json) into the directory")
      ("hidden", po::value(&hidden), "override: hidden size")
      ("intermediate", po::value(&intermediate), "override: FFN width")
      ("layers", po::value(&layers), "override: number of layers")
      ("heads", po::value(&heads), "override: attention heads")
      ("kv-heads", po::value(&kv_heads), "override: key/value heads")
      ("head-dim", po::value(&head_dim), "override: head dimension")
      ("vocab", po::value(&vocab), "override: vocabulary size")
      ("max-position", po::value(&max_position), "override: longest context")
      ("tied", po::bool_switch(&tied), "share the embedding with the lm head")
      ("untied", po::bool_switch(&untied), "separate lm head")
      ("layer-std", po::value(&layer_std), "std of the decoder layers' weights (default 0.02, as the rest); near 0 "
                                           "(1e-4) the next token hangs almost only on the last: a random bigram "
                                           "model, whose continuations repeat (benchmarks of prompt lookup)")
      ("force", po::bool_switch(&force), "replace --output when it exists");
  po::variables_map vm;
  if (!parse_or_help("mkmodel", "loom mkmodel --output DIR [--arch A] [--preset P] [--dtype D] [shape overrides]",
                     options, {}, args, vm))
    return 0;

  std::string hf_name = arch_name;
  static const std::pair<const char*, const char*> kArchNames[] = {
      {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"},
      {"qwen3", "Qwen3ForCausalLM"}, {"mixtral", "MixtralForCausalLM"}, {"qwen2_moe", "Qwen2MoeForCausalLM"}};
  for (const auto& [short_name, full] : kArchNames)
    if (arch_name == short_name) hf_name = full;
  auto arch = io::parse_architecture(hf_name);
  if (!arch) throw UsageError("--arch " + arch_name + ": expected llama, mistral, qwen2, qwen3, mixtral or qwen2_moe");
  auto config = preset(preset_name, *arch);
  if (!config)
    throw UsageError("--preset " + preset_name + ": expected tiny, tinystories-15m, tinystories-110m, llama-2-7b or llama-3-8b");
  if (hidden) config->hidden_size = hidden;
  if (intermediate) config->intermediate_size = intermediate;
  // Mixtral's experts are intermediate_size wide (Qwen2-MoE's have their own width, kept).
  if (intermediate && *arch == Architecture::kMixtral) config->moe_intermediate_size = intermediate;
  if (layers) config->num_hidden_layers = layers;
  if (heads) config->num_attention_heads = heads;
  if (kv_heads) config->num_key_value_heads = kv_heads;
  if (vocab) config->vocab_size = vocab;
  if (max_position) config->max_position_embeddings = max_position;
  if (heads || hidden) config->head_dim = config->hidden_size / config->num_attention_heads;
  if (head_dim) config->head_dim = head_dim;
  if (tied) config->tie_word_embeddings = true;
  if (untied) config->tie_word_embeddings = false;

  // Every argument is checked before the output is touched (--force removes it).
  if (format != "hf" && format != "llama2c") throw UsageError("--format " + format + ": expected hf or llama2c");
  std::string upper = dtype_name;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const auto dtype = io::parse_safetensors_dtype(upper);
  if (!dtype) throw UsageError("--dtype " + dtype_name + ": expected f32, f16 or bf16");
  io::validate_config(*config, "the --preset and shape options");
  const bool llama2c = format == "llama2c";
  if (vm.count("layer-std") && (!(layer_std >= 0.0f && layer_std <= 1.0f) || llama2c))
    throw UsageError("--layer-std " + std::to_string(layer_std) +
                     (llama2c ? ": only with --format hf" : ": expected a standard deviation in [0, 1]"));
  const std::uint64_t bytes = llama2c ? io::random_llama2c_bytes(*config) : io::random_model_bytes(*config, *dtype);
  write_new_output(output, "--output", force, bytes, [&](const std::filesystem::path& path) {
    if (llama2c) {
      io::write_random_llama2c(*config, seed, path);
    } else {
      io::RandomModelSpec spec{*config, *dtype, seed, 0.02f, layer_std, tokenizer, shards};
      io::write_random_model(spec, path);
    }
  });
  std::cerr << "wrote a random-weight " << arch_name << " model (" << preset_name << " shape, "
            << config->num_hidden_layers << " layers, hidden " << config->hidden_size << ", vocab "
            << config->vocab_size << ", " << format_byte_size(bytes) << ") to " << output << "\n";
  return 0;
}

}  // namespace loom::cli
