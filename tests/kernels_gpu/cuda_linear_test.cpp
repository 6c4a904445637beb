// Linear layers on the GPU (CublasLinear: Loom's GEMV for one row, cuBLAS above) against a
// float64 reference, 16-bit and fp32 outputs, ragged shapes, NaN-poisoned outputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/runtime/cublas_linear.h"
#include "loom/kernels/cuda/gemv.h"
#include "kernels/kernel_test_util.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

using kernels::cuda::DType;

class CudaLinear : public ::testing::TestWithParam<DType> {};

// A unit in the last place of a 16-bit value in [1, 2), and a value rounded as the kernels store it.
double unit_of(DType dtype) { return dtype == DType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8); }
double rounded(double v, DType dtype) {
  std::vector<float> one = {static_cast<float>(v)};
  round_to(one, dtype);
  return static_cast<double>(one[0]);
}

TEST_P(CudaLinear, MatchesFloat64AcrossTheGemvAndCublasPaths) {
  LOOM_REQUIRE_GPU();
  const DType dtype = GetParam();
  std::mt19937 rng(5);
  runtime::CudaStream stream;
  runtime::CublasLinear linear(stream.get());
  for (int rows : {1, 2, 3, 9, 37}) {
    for (int in : {8, 136, 4096}) {
      // 21011 outputs: every warp of the GEMV takes ten or more rows, the last ones past the end.
      for (int out : {37, 4096, 21011}) {
        if (out > 4096 && rows > 1) continue;
        auto x = random_floats(static_cast<std::size_t>(rows) * in, rng);
        auto w = random_floats(static_cast<std::size_t>(out) * in, rng, 0.05f);
        round_to(x, dtype);
        round_to(w, dtype);
        std::vector<double> ref(static_cast<std::size_t>(rows) * out);
        for (int r = 0; r < rows; ++r)
          for (int o = 0; o < out; ++o) {
            double acc = 0;
            for (int i = 0; i < in; ++i) acc += double(x[r * in + i]) * w[static_cast<std::size_t>(o) * in + i];
            ref[r * out + o] = acc;
          }
        DeviceHalf dx(x, dtype), dw(w, dtype), y(ref.size(), dtype);
        DeviceArray<float> y32(ref.size());
        linear.run(dx.data(), rows, in, dw.data(), out, y.data(), dtype);
        linear.run(dx.data(), rows, in, dw.data(), out, y32.data(), dtype, /*y_f32=*/true);
        stream.synchronize();
        const double unit = unit_of(dtype);
        EXPECT_LE(relative_error(y.read(), ref), 2 * unit) << rows << "x" << in << " -> " << out;
        EXPECT_LE(relative_error(y32.read(), ref), 1e-5) << rows << "x" << in << " -> " << out << " (fp32 out)";
      }
    }
  }
}

// The fused single-row forms (gemv.h) against float64: x = rmsnorm(hidden) * g rounded to 16 bits
// as the kernel stages it, gate and up rounded before SiLU, the residual add in fp32.
TEST_P(CudaLinear, FusedSingleRowFormsMatchFloat64) {
  LOOM_REQUIRE_GPU();
  namespace kc = kernels::cuda;
  const DType dtype = GetParam();
  const double unit = unit_of(dtype);
  auto round1 = [&](double v) { return rounded(v, dtype); };
  std::mt19937 rng(8);
  for (int in : {8, 136, 4096, 11008}) {
    // 21011 outputs: the GEMV's warps take ten or more rows each, the last past the end.
    for (int out : {37, 4096, 21011}) {
      const float eps = 1e-5f;
      auto hidden = random_floats(in, rng, 3.0f), g = random_floats(in, rng), residual = random_floats(out, rng);
      auto w = random_floats(static_cast<std::size_t>(2) * out * in, rng, 0.05f);  // [gate; up] for the SiLU form
      round_to(g, dtype);
      round_to(w, dtype);
      double ss = 0;
      for (float h : hidden) ss += double(h) * h;
      const double inv = 1.0 / std::sqrt(ss / in + eps);
      std::vector<float> x(in);
      for (int i = 0; i < in; ++i) x[i] = static_cast<float>(round1(hidden[i] * inv * g[i]));
      auto dot = [&](const std::vector<float>& v, int row) {
        double acc = 0;
        for (int i = 0; i < in; ++i) acc += double(v[i]) * w[static_cast<std::size_t>(row) * in + i];
        return acc;
      };
      std::vector<double> ref_norm(out), ref_silu(out), ref_residual(out);
      for (int o = 0; o < out; ++o) {
        ref_norm[o] = dot(x, o);
        const double gate = round1(dot(x, o)), up = round1(dot(x, out + o));
        ref_silu[o] = gate / (1.0 + std::exp(-gate)) * up;
        ref_residual[o] = residual[o] + dot(x, o);
      }
      DeviceArray<float> d_hidden(hidden), d_residual(residual);
      DeviceHalf d_g(g, dtype), d_w(w, dtype), d_x(x, dtype), y(out, dtype), act(out, dtype);
      DeviceArray<float> y32(out);
      LOOM_CUDA_CHECK(
          kc::gemv_rmsnorm(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out, y.data(), false, dtype, nullptr));
      LOOM_CUDA_CHECK(
          kc::gemv_rmsnorm(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out, y32.data(), true, dtype, nullptr));
      LOOM_CUDA_CHECK(
          kc::gemv_rmsnorm_silu(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out, act.data(), dtype, nullptr));
      LOOM_CUDA_CHECK(kc::gemv_add_residual(d_x.data(), in, d_w.data(), out, d_residual.data(), dtype, nullptr));
      const std::string shape = std::to_string(in) + " -> " + std::to_string(out);
      EXPECT_LE(relative_error(y.read(), ref_norm), 2 * unit) << "rmsnorm + GEMV " << shape;
      // fp32 out: no output rounding, but x may round the other way from float64's where the
      // kernel's fp32 norm lands on a rounding boundary.
      EXPECT_LE(relative_error(y32.read(), ref_norm), unit) << "rmsnorm + GEMV, fp32 out " << shape;
      EXPECT_LE(relative_error(act.read(), ref_silu), 3 * unit) << "rmsnorm + GEMV + SiLU " << shape;
      EXPECT_LE(relative_error(d_residual.read(), ref_residual), 2 * unit) << "GEMV + residual " << shape;
    }
  }
}

// The QKV form with RoPE (gemv_rmsnorm_rope) against float64: each row rounded as the GEMV stores
// it, again after the bias, then rotated (q and k heads; v heads copied), for rotate-half and
// interleaved pairs, with and without bias, a position inside the table and one clamped to it.
TEST_P(CudaLinear, FusedRopeFormMatchesFloat64) {
  LOOM_REQUIRE_GPU();
  namespace kc = kernels::cuda;
  const DType dtype = GetParam();
  const double unit = unit_of(dtype);
  auto round1 = [&](double v) { return rounded(v, dtype); };
  struct Heads {
    int in, heads, kv_heads, d;
  };
  std::mt19937 rng(11);
  const int table = 40;
  // The last shape gives each warp more than 32 pairs (their angles no longer fit one per lane).
  for (const Heads& shape : {Heads{136, 4, 2, 8}, Heads{64, 3, 1, 48}, Heads{4096, 32, 8, 128}, Heads{4096, 32, 32, 128},
                             Heads{8, 2200, 2, 128}}) {
    const int in = shape.in, d = shape.d, out = (shape.heads + 2 * shape.kv_heads) * d;
    const int rotary_rows = (shape.heads + shape.kv_heads) * d;
    std::vector<float> cos_sin(static_cast<std::size_t>(table) * d);
    for (int p = 0; p < table; ++p)
      for (int i = 0; i < d / 2; ++i) {
        const double angle = p * std::pow(10000.0, -2.0 * i / d);
        cos_sin[p * d + i] = static_cast<float>(std::cos(angle));
        cos_sin[p * d + d / 2 + i] = static_cast<float>(std::sin(angle));
      }
    for (const bool interleaved : {false, true})
      for (const bool with_bias : {false, true})
        for (const int position : {17, table + 5}) {
          const float eps = 1e-6f;
          auto hidden = random_floats(in, rng, 3.0f), g = random_floats(in, rng);
          auto w = random_floats(static_cast<std::size_t>(out) * in, rng, 0.05f), bias = random_floats(out, rng);
          round_to(g, dtype);
          round_to(w, dtype);
          round_to(bias, dtype);
          double ss = 0;
          for (float h : hidden) ss += double(h) * h;
          const double inv = 1.0 / std::sqrt(ss / in + eps);
          std::vector<double> row(out);
          for (int o = 0; o < out; ++o) {
            double acc = 0;
            for (int i = 0; i < in; ++i)
              acc += round1(hidden[i] * inv * g[i]) * double(w[static_cast<std::size_t>(o) * in + i]);
            row[o] = with_bias ? round1(round1(acc) + bias[o]) : round1(acc);
          }
          std::vector<double> ref = row;
          const int p = std::min(position, table - 1);
          for (int head = 0; head * d < rotary_rows; ++head)
            for (int i = 0; i < d / 2; ++i) {
              const int a = head * d + (interleaved ? 2 * i : i), b = interleaved ? a + 1 : a + d / 2;
              const double c = cos_sin[p * d + i], sn = cos_sin[p * d + d / 2 + i];
              ref[a] = row[a] * c - row[b] * sn;
              ref[b] = row[a] * sn + row[b] * c;
            }
          DeviceArray<float> d_hidden(hidden), d_table(cos_sin);
          DeviceArray<std::int32_t> d_position(std::vector<std::int32_t>{position});
          DeviceHalf d_g(g, dtype), d_w(w, dtype), d_bias(bias, dtype), y(out, dtype);
          kc::GemvRope rope;
          rope.position = d_position.data();
          rope.cos_sin = d_table.data();
          rope.table_positions = table;
          rope.head_dim = d;
          rope.interleaved = interleaved;
          rope.rotary_rows = rotary_rows;
          LOOM_CUDA_CHECK(kc::gemv_rmsnorm_rope(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out,
                                                with_bias ? d_bias.data() : nullptr, rope, y.data(), dtype, nullptr));
          EXPECT_LE(relative_error(y.read(), ref), 2 * unit)
              << in << " -> " << shape.heads << "+" << shape.kv_heads << "+" << shape.kv_heads << " heads of " << d
              << (interleaved ? ", interleaved" : ", rotate-half") << (with_bias ? ", bias" : "") << ", position "
              << position;
        }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLinear, ::testing::Values(DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(loom::sdk::dtype_name(info.param)); });

}  // namespace
}  // namespace loom::testing
