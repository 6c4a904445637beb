// Creating the CUDA model runner. Declared without CUDA types so the engine compiles the same
// with or without CUDA; a build without it throws ConfigError saying how to get one.
#pragma once

#include <cstdint>
#include <memory>

#include "core/io/model_weights.h"
#include "core/model/model.h"

namespace loom {

struct CudaModelOptions {
  int device_index = 0;
  bool fp16 = false;                  // else bf16
  std::uint32_t max_num_batched_tokens = 2048;
  std::uint32_t max_num_seqs = 64;
  std::uint32_t max_model_len = 2048;
  std::uint32_t max_draft_tokens = 0;  // [speculative] num_draft_tokens: a sequence samples 1 + this many rows
  bool cuda_graphs = true;
};

// True when this build has the CUDA backend.
bool cuda_backend_compiled();

// Checks, before anything is loaded, that this build has the CUDA backend and that GPU `index`
// is visible, and makes it the current device. Throws ConfigError / DeviceError saying which.
void check_cuda_device(int index);

// Uploads the weights (converted to fp16/bf16) and allocates every work buffer for the largest
// step. Throws ModelError for an architecture the GPU path does not run, DeviceError for device
// failures (out of memory says how much was asked and how much is free).
std::unique_ptr<Model> make_cuda_model(io::LoadedModel model, const CudaModelOptions& options);

}  // namespace loom
