#include "core/io/tensor_convert.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "loom/error.h"

namespace loom::io {

void convert_to_fp32(DType dtype, const std::byte* src, std::size_t count, float* dst) {
  if (count == 0) return;  // src and dst may then be null, which memcpy does not allow
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::f16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case DType::bf16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case DType::i32:
    case DType::i64: break;
  }
  throw Error(std::string("convert_to_fp32: ") + sdk::dtype_name(dtype) + " is not a floating-point type");
}

void convert_from_fp32(DType dtype, const float* src, std::size_t count, std::byte* dst) {
  if (count == 0) return;  // src and dst may then be null, which memcpy does not allow
  switch (dtype) {
    case DType::f32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::f16:
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::bf16:
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::i32:
    case DType::i64: break;
  }
  throw Error(std::string("convert_from_fp32: ") + sdk::dtype_name(dtype) + " is not a floating-point type");
}

void copy_to_fp32(const TensorView& tensor, std::span<float> dst) {
  const auto n = static_cast<std::size_t>(tensor.numel());
  if (dst.size() != n)
    throw ModelError("tensor '" + tensor.name + "' in '" + tensor.file.string() + "' has " +
                     std::to_string(n) + " elements but the destination holds " +
                     std::to_string(dst.size()));
  convert_to_fp32(tensor.dtype, tensor.data, n, dst.data());
}

}  // namespace loom::io
