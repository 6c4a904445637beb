#include "core/model/cuda_rope_table.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/model/config_adapters.h"
#include "loom/cuda_check.h"
#include "loom/kernels/cpu/rope.h"

namespace loom {

CudaRopeTable::CudaRopeTable(const io::ModelConfig& c, int positions) : positions_(std::max(1, positions)) {
  const int d = static_cast<int>(c.head_dim), half = d / 2;
  std::vector<std::int32_t> all(positions_);
  for (int p = 0; p < positions_; ++p) all[p] = p;
  const kernels::cpu::RopeScaling scaling = rope_scaling_of(c.rope_scaling);
  const auto inv_freq = kernels::cpu::rope_inverse_frequencies(d, c.rope_theta, scaling);
  std::vector<float> cos(static_cast<std::size_t>(positions_) * half), sin(cos.size());
  kernels::cpu::rope_cos_sin(inv_freq, all.data(), positions_, cos.data(), sin.data(), scaling.attention_factor);
  std::vector<float> table(static_cast<std::size_t>(positions_) * d);
  for (int p = 0; p < positions_; ++p) {
    const std::size_t row = static_cast<std::size_t>(p);
    std::copy_n(cos.data() + row * half, half, table.data() + row * d);
    std::copy_n(sin.data() + row * half, half, table.data() + row * d + half);
  }
  table_ = runtime::DeviceBuffer(table.size() * sizeof(float), "the RoPE table");
  LOOM_CUDA_CHECK(cudaMemcpy(table_.data(), table.data(), table.size() * sizeof(float), cudaMemcpyHostToDevice));
}

}  // namespace loom
