#include <cstdint>

#include "core/io/hf_config.h"
#include "core/io/hf_layout.h"
#include "core/io/model_loader.h"
#include "core/io/tensor_convert.h"
#include "core/io/tensor_store.h"
#include "loom/error.h"

namespace loom::io {
namespace {

Tensor to_fp32_tensor(const TensorView& view) {
  if (view.dtype == DType::f32 && reinterpret_cast<std::uintptr_t>(view.data) % alignof(float) == 0)
    return Tensor::view(view.shape, reinterpret_cast<const float*>(view.data), view.mapping);
  std::vector<float> values(static_cast<std::size_t>(view.numel()));
  copy_to_fp32(view, values);
  return Tensor::owned(view.shape, std::move(values));
}

}  // namespace

LoadedModel load_hf_model(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir))
    throw ModelError("model directory '" + dir.string() + "' does not exist or is not a directory");
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path))
    throw ModelError("model directory '" + dir.string() +
                     "' has no config.json (a Hugging Face model directory needs config.json next to "
                     "its *.safetensors; download it with the weights)");
  LoadedModel model;
  model.config = read_hf_config(config_path);
  const ModelConfig& c = model.config;
  const TensorStore store = TensorStore::open_directory(dir);
  const std::string arch(architecture_hf_name(c.architecture));

  for (const HfTensorSlot& slot : hf_tensor_slots(c, model.weights)) {
    const TensorView* view = store.find(slot.name);
    if (view == nullptr) {
      std::string fix;
      if (slot.name == "lm_head.weight")
        fix = "; if the model shares its embedding with the output layer, set \"tie_word_embeddings\": true in config.json";
      throw ModelError("model '" + dir.string() + "': tensor '" + slot.name + "' (shape " +
                       shape_to_string(slot.shape) + ", expected for " + arch + ") is missing" + fix);
    }
    if (view->shape != slot.shape)
      throw ModelError("model '" + dir.string() + "': tensor '" + slot.name + "' in '" +
                       view->file.filename().string() + "' has shape " + shape_to_string(view->shape) +
                       " but config.json implies " + shape_to_string(slot.shape) +
                       " (hidden_size=" + std::to_string(c.hidden_size) +
                       ", heads=" + std::to_string(c.num_attention_heads) +
                       ", kv_heads=" + std::to_string(c.num_key_value_heads) +
                       ", head_dim=" + std::to_string(c.head_dim) +
                       ", intermediate_size=" + std::to_string(c.intermediate_size) +
                       ", vocab_size=" + std::to_string(c.vocab_size) + "); config and weights disagree");
    *slot.destination = to_fp32_tensor(*view);
  }
  if (c.tie_word_embeddings) model.weights.lm_head = model.weights.token_embedding;
  return model;
}

}  // namespace loom::io
