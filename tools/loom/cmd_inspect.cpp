// `loom inspect MODEL`: loads a checkpoint (and its tokenizer) the way a run would and prints
// what it is. Every defect in the files is reported as a run would report it (exit code 2).
#include <iostream>

#include "core/config/byte_size.h"
#include "core/io/model_loader.h"
#include "core/tokenizer/tokenizer.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"

namespace loom::cli {

int run_inspect(std::span<const std::string> args) {
  std::string model_path, tokenizer_path;
  po::options_description options("loom inspect");
  options.add_options()("model", po::value(&model_path)->required(), "Hugging Face directory or llama2.c .bin")(
      "tokenizer", po::value(&tokenizer_path), "tokenizer.model or tokenizer.json (default: the one in the model folder)");
  po::positional_options_description positional;
  positional.add("model", 1);
  po::variables_map vm;
  if (!parse_or_help("inspect", "loom inspect MODEL [--tokenizer PATH]", options, positional, args, vm)) return 0;

  io::LoadedModel model = io::load_model(model_path);
  const io::ModelConfig& c = model.config;
  std::cout << "model:        " << model_path << "\n"
            << "architecture: " << io::architecture_hf_name(c.architecture) << "\n"
            << "layers:       " << c.num_hidden_layers << ", hidden " << c.hidden_size << ", FFN " << c.intermediate_size
            << "\n"
            << "attention:    " << c.num_attention_heads << " heads, " << c.num_key_value_heads << " KV heads, head dim "
            << c.head_dim << (c.qkv_bias ? ", QKV bias" : "") << (c.qk_norm ? ", QK norm" : "") << "\n"
            << "rope:         " << io::describe_rope(c) << "\n"
            << "vocabulary:   " << c.vocab_size << (c.tie_word_embeddings ? " (embedding tied to lm head)" : "") << "\n"
            << "context:      " << c.context_length() << " positions";
  if (c.context_length() < c.max_position_embeddings)
    std::cout << " (a sliding window of " << c.sliding_window << " of " << c.max_position_embeddings
              << "; Loom has no sliding-window attention, so it serves contexts up to the window)";
  std::cout << "\n";
  if (c.is_moe())
    std::cout << "experts:      " << c.num_experts << ", " << c.num_experts_per_tok << " per token\n";
  const std::uint64_t params = io::num_parameters(model.weights);
  std::cout << "parameters:   " << params << " (" << format_byte_size(static_cast<std::uint64_t>(params) * 4) << " as fp32)\n";

  std::filesystem::path tokenizer = tokenizer_path;
  if (tokenizer.empty()) tokenizer = Tokenizer::find_beside(model_path);
  if (tokenizer.empty()) {
    std::cout << "tokenizer:    none (prompts must be token ids)\n";
  } else {
    Tokenizer t = Tokenizer::load(tokenizer);
    std::cout << "tokenizer:    " << tokenizer.string() << ", " << t.vocab_size() << " pieces, BOS " << t.bos_id()
              << ", EOS " << t.eos_id() << "\n";
    if (t.vocab_size() > c.vocab_size)
      throw ModelError("tokenizer '" + tokenizer.string() + "' has " + std::to_string(t.vocab_size()) +
                       " pieces but the model's vocabulary is " + std::to_string(c.vocab_size) +
                       ": they do not belong together");
  }
  return 0;
}

}  // namespace loom::cli
