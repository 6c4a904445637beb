// Fuzz target `hf_config`: the text of a Hugging Face config.json.
//
// Path: parse_hf_config_text (JSON, then parse_hf_config: architecture, sizes, defaults, RoPE
// scaling, MoE fields, token ids, validate_config). An accepted config's derived sizes (q_size,
// kv_size, which layers are MoE), as the loader computes them next, must be computable without
// overflow. And it must survive the way back: to_hf_config_json writes it, and parse_hf_config
// reads that again with the same shape; a refusal or a different shape there is a bug too (the
// harness aborts).
// Expected: loom::Error (ModelError). Anything else escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/io/hf_config.h"
#include "loom/error.h"

namespace {

void round_trip(const loom::io::ModelConfig& c) {
  loom::io::ModelConfig back;
  try {
    back = loom::io::parse_hf_config(loom::io::to_hf_config_json(c), "written config.json");
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "an accepted config was refused when written and read back: %s\n", e.what());
    std::abort();
  }
  if (back.architecture != c.architecture || back.hidden_size != c.hidden_size ||
      back.intermediate_size != c.intermediate_size || back.num_hidden_layers != c.num_hidden_layers ||
      back.num_attention_heads != c.num_attention_heads || back.num_key_value_heads != c.num_key_value_heads ||
      back.head_dim != c.head_dim || back.vocab_size != c.vocab_size || back.num_experts != c.num_experts ||
      back.num_experts_per_tok != c.num_experts_per_tok || back.moe_intermediate_size != c.moe_intermediate_size ||
      back.eos_token_ids != c.eos_token_ids || back.bos_token_id != c.bos_token_id) {
    std::fprintf(stderr, "an accepted config read back with a different shape\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const loom::io::ModelConfig config =
        loom::io::parse_hf_config_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    volatile std::int64_t sizes = config.q_size() + config.kv_size();
    (void)sizes;
    (void)config.layer_is_moe(config.num_hidden_layers - 1);
    round_trip(config);
  } catch (const loom::Error&) {
  }
  return 0;
}
