// Linear layers on the GPU (CublasLinear: Loom's GEMV for one row, cuBLAS above) against a
// float64 reference, 16-bit and fp32 outputs, ragged shapes, NaN-poisoned outputs.
#include <cmath>
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

TEST_P(CudaLinear, MatchesFloat64AcrossTheGemvAndCublasPaths) {
  LOOM_REQUIRE_GPU();
  const DType dtype = GetParam();
  std::mt19937 rng(5);
  runtime::CudaStream stream;
  runtime::CublasLinear linear(stream.get());
  for (int rows : {1, 2, 3, 9, 37}) {
    for (int in : {8, 136, 4096}) {
      // 21011 outputs: ragged against the GEMV's blocks of eight rows (one row per warp).
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
        const double unit = dtype == DType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
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
  const double unit = dtype == DType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
  auto round1 = [&](double v) {
    std::vector<float> one = {static_cast<float>(v)};
    round_to(one, dtype);
    return static_cast<double>(one[0]);
  };
  std::mt19937 rng(8);
  for (int in : {8, 136, 4096, 11008}) {
    // 21011 outputs: the norm forms' warps take ten or more rows each, the last past the end.
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
      LOOM_CUDA_CHECK(kc::gemv_rmsnorm(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out, y.data(), dtype, nullptr));
      LOOM_CUDA_CHECK(
          kc::gemv_rmsnorm_silu(d_hidden.data(), d_g.data(), eps, in, d_w.data(), out, act.data(), dtype, nullptr));
      LOOM_CUDA_CHECK(kc::gemv_add_residual(d_x.data(), in, d_w.data(), out, d_residual.data(), dtype, nullptr));
      const std::string shape = std::to_string(in) + " -> " + std::to_string(out);
      EXPECT_LE(relative_error(y.read(), ref_norm), 2 * unit) << "rmsnorm + GEMV " << shape;
      EXPECT_LE(relative_error(act.read(), ref_silu), 3 * unit) << "rmsnorm + GEMV + SiLU " << shape;
      EXPECT_LE(relative_error(d_residual.read(), ref_residual), 2 * unit) << "GEMV + residual " << shape;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLinear, ::testing::Values(DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(kernels::cuda::dtype_name(info.param)); });

}  // namespace
}  // namespace loom::testing
