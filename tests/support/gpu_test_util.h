// Helpers for GPU tests: skipping with the reason when no GPU is usable, 16-bit device buffers
// filled from and read back to fp32 host vectors, and NaN poisoning of outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/io/dtype.h"
#include "core/runtime/device_memory.h"
#include "loom/cuda_check.h"
#include "loom/kernels/cuda/dtype.h"
#include "loom/kernels/cuda_devices.h"

namespace loom::testing {

// "" when a GPU is usable; else why not (shown by GTEST_SKIP).
inline std::string no_gpu_reason() {
  std::string why;
  if (kernels::cuda_devices(&why).empty()) return "no GPU to test on: " + why;
  return "";
}

#define LOOM_REQUIRE_GPU()                                                   \
  do {                                                                       \
    if (const std::string why = ::loom::testing::no_gpu_reason(); !why.empty()) GTEST_SKIP() << why; \
  } while (false)

inline std::uint16_t to_16bit(float x, kernels::cuda::DType dtype) {
  return dtype == kernels::cuda::DType::f16 ? io::fp32_to_fp16(x) : io::fp32_to_bf16(x);
}

inline float from_16bit(std::uint16_t x, kernels::cuda::DType dtype) {
  return dtype == kernels::cuda::DType::f16 ? io::fp16_to_fp32(x) : io::bf16_to_fp32(x);
}

// Rounds values to the dtype in place (so references see exactly what the kernel reads).
inline void round_to(std::vector<float>& values, kernels::cuda::DType dtype) {
  for (float& v : values) v = from_16bit(to_16bit(v, dtype), dtype);
}

// A 16-bit device array.
struct DeviceHalf {
  runtime::DeviceBuffer buffer;
  std::size_t size = 0;
  kernels::cuda::DType dtype;

  DeviceHalf(std::size_t n, kernels::cuda::DType type) : buffer(n * 2 + 16, "test"), size(n), dtype(type) { poison(); }
  DeviceHalf(const std::vector<float>& host, kernels::cuda::DType type) : DeviceHalf(host.size(), type) {
    std::vector<std::uint16_t> bits(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) bits[i] = to_16bit(host[i], type);
    LOOM_CUDA_CHECK(cudaMemcpy(buffer.data(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  }
  void* data() const { return buffer.data(); }
  // 0xFFFF is NaN in both fp16 and bf16: an output never written stays NaN.
  void poison() { LOOM_CUDA_CHECK(cudaMemset(buffer.data(), 0xFF, buffer.bytes())); }
  std::vector<float> read() const {
    std::vector<std::uint16_t> bits(size);
    LOOM_CUDA_CHECK(cudaDeviceSynchronize());
    LOOM_CUDA_CHECK(cudaMemcpy(bits.data(), buffer.data(), size * 2, cudaMemcpyDeviceToHost));
    std::vector<float> out(size);
    for (std::size_t i = 0; i < size; ++i) out[i] = from_16bit(bits[i], dtype);
    return out;
  }
};

template <typename T>
struct DeviceArray {
  runtime::DeviceBuffer buffer;
  std::size_t size = 0;
  explicit DeviceArray(std::size_t n) : buffer(n * sizeof(T) + 16, "test"), size(n) {
    LOOM_CUDA_CHECK(cudaMemset(buffer.data(), 0xFF, buffer.bytes()));
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    LOOM_CUDA_CHECK(cudaMemcpy(buffer.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* data() const { return buffer.as<T>(); }
  std::vector<T> read() const {
    std::vector<T> out(size);
    LOOM_CUDA_CHECK(cudaDeviceSynchronize());
    LOOM_CUDA_CHECK(cudaMemcpy(out.data(), buffer.data(), size * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }
};

}  // namespace loom::testing
