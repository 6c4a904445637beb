// The CUDA backend in a build without CUDA: says so, and how to build one.
#include "core/model/cuda_model_factory.h"

#include "loom/error.h"

namespace loom {

bool cuda_backend_compiled() { return false; }

void check_cuda_device(int) {
  throw ConfigError("[engine] device: this build of Loom has no CUDA backend; rebuild with CUDA (tools/setup.sh "
                    "--cuda on, which needs nvcc) or set device = \"cpu\"");
}

std::unique_ptr<Model> make_cuda_model(io::LoadedModel, const CudaModelOptions& options) {
  check_cuda_device(options.device_index);
  return nullptr;  // not reached
}

}  // namespace loom
