// Fuzz target `llama2c`: the bytes of a llama2.c checkpoint (legacy version 0 .bin).
//
// Path: load_llama2c on the bytes in memory: size and magic checks, the 28-byte header
// (llama2c_file_size: sizes, divisibility, overflow), the file size it implies, the ModelConfig
// (validate_config), then the weight views. Every view is read in full afterwards, so a view
// that reaches past the input shows as an AddressSanitizer report.
// Expected: loom::Error (ModelError). Anything else escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "core/io/model_loader.h"
#include "loom/error.h"

namespace {

float sum(const loom::io::Tensor& tensor) {
  float total = 0;
  for (float v : tensor.values()) total += v;
  return total;
}

void run(std::span<const std::byte> file) {
  const loom::io::LoadedModel model = loom::io::load_llama2c(file, nullptr, "fuzz.bin");
  const loom::io::ModelWeights& w = model.weights;
  if (w.layers.size() != static_cast<std::size_t>(model.config.num_hidden_layers)) std::abort();
  volatile float total = sum(w.token_embedding) + sum(w.final_norm) + sum(w.lm_head);
  for (const loom::io::LayerWeights& layer : w.layers) {
    for (const loom::io::Tensor* t : {&layer.attn_norm, &layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn_norm,
                                      &layer.w_gate, &layer.w_up, &layer.w_down})
      total = total + sum(*t);
  }
  (void)total;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(std::span(reinterpret_cast<const std::byte*>(data), size));
  } catch (const loom::Error&) {
  }
  return 0;
}
