// Element types of checkpoint files and the exact conversions between them and fp32.
//
// The conversions are bit manipulations (no libm), so they give the same bits on every platform.
// fp16 -> fp32 and bf16 -> fp32 are exact (subnormals, +-inf and NaN included); fp32 -> fp16 and
// fp32 -> bf16 round to nearest even, overflow to inf, and keep NaN a (quiet) NaN.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loom/dtype.h"

namespace loom::io {

static_assert(std::endian::native == std::endian::little, "loom_io assumes a little-endian host");

// The SDK's one enum (loom/dtype.h; its dtype_size and dtype_name apply). Checkpoint tensors
// are f32, f16 or bf16: the readers refuse every other type.
using sdk::DType;

// The safetensors spelling: "F32", "F16", "BF16", "I32", "I64".
std::string_view safetensors_dtype_name(DType dtype);
// Parses a safetensors dtype string; nullopt for anything Loom does not read (F64, I64, ...).
std::optional<DType> parse_safetensors_dtype(std::string_view name);

// "[4096, 11008]" — for error messages.
std::string shape_to_string(const std::vector<std::int64_t>& shape);
// Product of the dimensions (1 for a scalar); nullopt on a negative dimension or overflow.
std::optional<std::int64_t> shape_numel(const std::vector<std::int64_t>& shape);

inline float bf16_to_fp32(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

inline float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, or NaN with its payload
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal mant * 2^-24: shift until the implicit bit appears, lowering the exponent.
    std::uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

inline std::uint16_t fp32_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  const std::uint32_t rounded = x + 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

inline std::uint16_t fp32_to_fp16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 -> inf
  if (a < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 makes the FPU round (to nearest even) to a
    // multiple of 2^-24, which is then the fp16 mantissa read off the low bits.
    const float v = std::bit_cast<float>(a) + 0.5f;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(v) - 0x3F000000u));
  }
  const std::uint32_t odd = (a >> 13) & 1u;
  a -= 112u << 23;  // rebias 127 -> 15
  a += 0xFFFu + odd;
  return static_cast<std::uint16_t>(sign | (a >> 13));
}

}  // namespace loom::io
