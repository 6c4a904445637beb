// Views of memory the engine owns, as plugins that compute (attention, drafters, connectors)
// receive it: raw pointers with dtype, shape and device. A view never owns or frees memory.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "loom/dtype.h"

namespace loom::sdk {

enum class DeviceKind : std::uint8_t { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  std::int32_t index = 0;
};

// Opaque stream handle: a cudaStream_t on CUDA devices, nullptr on the CPU.
using Stream = void*;

// A dense row-major tensor of up to four dimensions.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device;
  std::int32_t rank = 0;
  std::array<std::int64_t, 4> shape{};

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int32_t i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

// The paged KV cache. For each layer, K and V are separate arrays laid out
// [num_blocks, block_size, num_kv_heads, head_dim], row-major, of `dtype`, on `device`.
struct KvCacheView {
  struct Layer {
    void* k = nullptr;
    void* v = nullptr;
  };
  DType dtype = DType::f32;
  Device device;
  std::uint32_t num_blocks = 0;
  std::uint32_t block_size = 0;
  std::uint32_t num_kv_heads = 0;
  std::uint32_t head_dim = 0;
  std::span<const Layer> layers;

  std::size_t block_elements() const {
    return static_cast<std::size_t>(block_size) * num_kv_heads * head_dim;
  }
};

}  // namespace loom::sdk
