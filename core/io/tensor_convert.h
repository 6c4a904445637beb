// Converting tensor data between a file's element type and fp32, straight from/to the bytes
// (no intermediate copy of the whole tensor).
#pragma once

#include <cstddef>
#include <span>

#include "core/io/dtype.h"
#include "core/io/safetensors.h"

namespace loom::io {

// Converts `count` elements of `dtype` at `src` (any alignment) to fp32 into `dst`.
void convert_to_fp32(DType dtype, const std::byte* src, std::size_t count, float* dst);

// Converts fp32 values to `dtype` at `dst` (any alignment); dst holds count * dtype_size bytes.
void convert_from_fp32(DType dtype, const float* src, std::size_t count, std::byte* dst);

// Copies the whole tensor into `dst` as fp32. Throws loom::ModelError naming the tensor when
// dst.size() differs from the tensor's element count.
void copy_to_fp32(const TensorView& tensor, std::span<float> dst);

}  // namespace loom::io
