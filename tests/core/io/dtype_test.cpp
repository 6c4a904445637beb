#include "core/io/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "core/io/tensor_convert.h"

namespace loom::io {
namespace {

TEST(IoDtype, Fp16ToFp32KnownBitPatterns) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);                     // largest normal
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));       // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));       // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));    // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(std::bit_cast<std::uint32_t>(fp16_to_fp32(0x0000)), 0u);
  EXPECT_EQ(std::bit_cast<std::uint32_t>(fp16_to_fp32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));  // signalling NaN stays NaN
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xFE00)));
}

TEST(IoDtype, Bf16ToFp32KnownBitPatterns) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
  EXPECT_EQ(bf16_to_fp32(0x7F7F), std::bit_cast<float>(0x7F7F0000u));
  EXPECT_EQ(bf16_to_fp32(0x0001), std::bit_cast<float>(0x00010000u));  // subnormal
  EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_fp32(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7FC0)));
  EXPECT_EQ(std::bit_cast<std::uint32_t>(bf16_to_fp32(0x8000)), 0x80000000u);
}

TEST(IoDtype, Fp16RoundTripIsExactForEveryFiniteValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0) continue;  // NaN payloads
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(bits)), bits) << std::hex << h;
  }
}

TEST(IoDtype, Fp32ToFp16RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // overflow to inf
  EXPECT_EQ(fp32_to_fp16(1e-8f), 0x0000);     // below half the smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) * 1.5f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7E00, 0x7E00);
}

TEST(IoDtype, Fp32ToBf16RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
}

TEST(IoDtype, ConvertToFp32ReadsUnalignedBytes) {
  alignas(4) unsigned char raw[1 + 3 * 2] = {0xAA, 0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00};
  float out[3];
  convert_to_fp32(DType::f16, reinterpret_cast<const std::byte*>(raw + 1), 3, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));
}

TEST(IoDtype, NamesAndShapes) {
  EXPECT_EQ(parse_safetensors_dtype("BF16"), DType::bf16);
  EXPECT_FALSE(parse_safetensors_dtype("I64").has_value());
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(shape_to_string({4096, 11008}), "[4096, 11008]");
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({3, 0, 5}), 0);
  EXPECT_FALSE(shape_numel({1LL << 40, 1LL << 40}).has_value());
}

}  // namespace
}  // namespace loom::io
