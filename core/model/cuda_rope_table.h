// The rotary embedding's cos/sin table on the GPU, [positions, head_dim] fp32 (cos in the first
// half of a row, sin in the second), from the CPU's double-precision angles so that both
// runners rotate alike.
#pragma once

#include "core/io/model_config.h"
#include "core/runtime/device_memory.h"

namespace loom {

class CudaRopeTable {
 public:
  // For positions [0, max(1, positions)). Throws DeviceError.
  CudaRopeTable(const io::ModelConfig& config, int positions);

  const float* data() const { return table_.as<float>(); }
  int positions() const { return positions_; }

 private:
  int positions_;
  runtime::DeviceBuffer table_;
};

}  // namespace loom
