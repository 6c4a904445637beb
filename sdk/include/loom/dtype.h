// The element types of Loom's tensors: one enum for the SDK, the checkpoint readers and the
// kernels alike.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loom::sdk {

enum class DType : std::uint8_t { f32, f16, bf16, i32, i64 };

// Bytes per element.
constexpr std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: return 2;
    case DType::i64: return 8;
  }
  return 0;
}

// How configs, logs and errors spell it: "fp32", "fp16", "bf16", "int32", "int64".
constexpr const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "fp32";
    case DType::f16: return "fp16";
    case DType::bf16: return "bf16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  return "?";
}

}  // namespace loom::sdk
