// Linear layers on the GPU (CublasLinear: Loom's GEMV for one row, cuBLAS above) against a
// float64 reference, 16-bit and fp32 outputs, ragged shapes, NaN-poisoned outputs.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/runtime/cublas_linear.h"
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
      for (int out : {37, 4096}) {
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

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLinear, ::testing::Values(DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(kernels::cuda::dtype_name(info.param)); });

}  // namespace
}  // namespace loom::testing
