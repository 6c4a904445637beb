// The CUDA row kernels against float64 references computed from the same 16-bit-rounded inputs,
// in fp16 and bf16, on ragged shapes, with NaN-poisoned outputs. Tolerances: the norm-relative
// error of an output rounded once to 16 bits is at most the unit roundoff (fp16 2^-11, bf16
// 2^-8); we allow twice that.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernel_test_util.h"
#include "loom/kernels/cpu/rope.h"
#include "loom/kernels/cuda/elementwise.h"
#include "loom/kernels/cuda/rope.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

using kernels::cuda::DType;
namespace kc = kernels::cuda;

double tolerance(DType dtype) { return dtype == DType::f16 ? 2.0 * std::ldexp(1.0, -11) : 2.0 * std::ldexp(1.0, -8); }

class CudaElementwise : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { LOOM_REQUIRE_GPU(); }
  DType dtype() const { return GetParam(); }
  std::vector<float> random_rounded(std::size_t n, float scale = 1.0f) {
    auto x = random_floats(n, rng_, scale);
    round_to(x, dtype());
    return x;
  }
  std::mt19937 rng_{1234};
};

TEST_P(CudaElementwise, RmsNormMatchesFloat64) {
  for (int rows : {1, 3, 17}) {
    for (int cols : {8, 100, 288, 4096}) {
      auto x = random_rounded(static_cast<std::size_t>(rows) * cols, 3.0f);
      auto w = random_rounded(cols);
      DeviceHalf dx(x, dtype()), dw(w, dtype()), out(x.size(), dtype());
      LOOM_CUDA_CHECK(kc::rmsnorm(dx.data(), dw.data(), rows, cols, 1e-5f, out.data(), dtype(), nullptr));
      std::vector<double> ref(x.size());
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int i = 0; i < cols; ++i) ss += double(x[r * cols + i]) * x[r * cols + i];
        const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
        for (int i = 0; i < cols; ++i) ref[r * cols + i] = x[r * cols + i] * inv * w[i];
      }
      EXPECT_LE(relative_error(out.read(), ref), tolerance(dtype())) << rows << "x" << cols;
    }
  }
}

TEST_P(CudaElementwise, AddRmsNormUpdatesTheFp32ResidualAndNormalises) {
  const int rows = 5, cols = 4096 + 8;
  auto h = random_floats(rows * cols, rng_), delta = random_rounded(rows * cols), w = random_rounded(cols);
  DeviceArray<float> dh(h);
  DeviceHalf dd(delta, dtype()), dw(w, dtype()), out(h.size(), dtype());
  LOOM_CUDA_CHECK(kc::add_rmsnorm(dh.data(), dd.data(), dw.data(), rows, cols, 1e-6f, out.data(), dtype(), nullptr));
  std::vector<float> rounded(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) rounded[i] = h[i] + delta[i];
  EXPECT_EQ(dh.read(), rounded) << "the residual stream is hidden + delta in fp32";
  std::vector<double> ref(h.size());
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < cols; ++i) ss += double(rounded[r * cols + i]) * rounded[r * cols + i];
    const double inv = 1.0 / std::sqrt(ss / cols + 1e-6);
    for (int i = 0; i < cols; ++i) ref[r * cols + i] = rounded[r * cols + i] * inv * w[i];
  }
  EXPECT_LE(relative_error(out.read(), ref), tolerance(dtype()));
}

TEST_P(CudaElementwise, SiluAndMulOnVectorAndScalarWidths) {
  for (int inter : {8, 13, 688, 11008}) {
    const int rows = 3;
    auto gu = random_rounded(static_cast<std::size_t>(rows) * 2 * inter, 2.0f);
    DeviceHalf dgu(gu, dtype()), out(static_cast<std::size_t>(rows) * inter, dtype());
    LOOM_CUDA_CHECK(kc::silu_and_mul(dgu.data(), rows, inter, out.data(), dtype(), nullptr));
    std::vector<double> ref(out.size);
    for (int r = 0; r < rows; ++r)
      for (int i = 0; i < inter; ++i) {
        const double g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
        ref[r * inter + i] = g / (1.0 + std::exp(-g)) * u;
      }
    EXPECT_LE(relative_error(out.read(), ref), tolerance(dtype())) << "inter " << inter;
  }
}

TEST_P(CudaElementwise, EmbeddingCopiesRowsAndFlagsABadId) {
  const int vocab = 50;
  // 16-byte rows of one chunk per thread and of several (4096 = Llama-2-7B), and a row that is
  // not a multiple of 8 elements (element-wise copy).
  for (const int hidden : {72, 4096, 36}) {
    SCOPED_TRACE("hidden " + std::to_string(hidden));
    auto table = random_rounded(vocab * hidden);
    DeviceHalf dt(table, dtype());
    const std::vector<std::int32_t> ids = {3, 0, 49, 3, 17};
    DeviceArray<std::int32_t> dids(ids), bad(std::vector<std::int32_t>{-1});
    DeviceArray<float> out(ids.size() * hidden);  // poisoned (NaN)
    LOOM_CUDA_CHECK(kc::embedding(dt.data(), vocab, hidden, dids.data(), static_cast<int>(ids.size()), out.data(),
                                  bad.data(), dtype(), nullptr));
    auto got = out.read();
    for (std::size_t t = 0; t < ids.size(); ++t)
      for (int i = 0; i < hidden; ++i) ASSERT_EQ(got[t * hidden + i], table[ids[t] * hidden + i]);
    EXPECT_EQ(bad.read()[0], -1);
    DeviceArray<std::int32_t> wrong(std::vector<std::int32_t>{2, 50});
    LOOM_CUDA_CHECK(kc::embedding(dt.data(), vocab, hidden, wrong.data(), 2, out.data(), bad.data(), dtype(), nullptr));
    EXPECT_EQ(bad.read()[0], 50);
    got = out.read();
    for (int i = 0; i < hidden; ++i) ASSERT_EQ(got[hidden + i], 0.0f) << "a bad id's row is zero";
  }
}

TEST_P(CudaElementwise, GatherRowsAndAddBias) {
  const int rows = 9, cols = 40;
  auto x = random_rounded(rows * cols), bias = random_rounded(cols);
  DeviceHalf dx(x, dtype()), db(bias, dtype());
  const std::vector<std::int32_t> pick = {8, 0, 4};
  DeviceArray<std::int32_t> dpick(pick);
  DeviceHalf gathered(pick.size() * cols, dtype());
  LOOM_CUDA_CHECK(kc::gather_rows(dx.data(), dpick.data(), 3, cols, gathered.data(), dtype(), nullptr));
  auto g = gathered.read();
  for (std::size_t r = 0; r < pick.size(); ++r)
    for (int i = 0; i < cols; ++i) ASSERT_EQ(g[r * cols + i], x[pick[r] * cols + i]);
  LOOM_CUDA_CHECK(kc::add_bias(dx.data(), db.data(), rows, cols, dtype(), nullptr));
  std::vector<double> ref(x.size());
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < cols; ++i) ref[r * cols + i] = double(x[r * cols + i]) + bias[i];
  EXPECT_LE(relative_error(dx.read(), ref), tolerance(dtype()));
}

TEST_P(CudaElementwise, ConvertFromF32RoundsToNearest) {
  auto x = random_floats(100003, rng_, 10.0f);
  DeviceArray<float> src(x);
  DeviceHalf out(x.size(), dtype());
  LOOM_CUDA_CHECK(kc::convert_from_f32(src.data(), out.data(), x.size(), dtype(), nullptr));
  auto expected = x;
  round_to(expected, dtype());
  EXPECT_EQ(out.read(), expected);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaElementwise, ::testing::Values(DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(loom::sdk::dtype_name(info.param)); });

TEST(CudaArgmax, LowestIndexOfTheLargestSkippingNaN) {
  LOOM_REQUIRE_GPU();
  const int vocab = 32003;
  std::mt19937 rng(7);
  std::vector<float> logits = random_floats(4 * vocab, rng);
  logits[0 * vocab + 31000] = 50.0f;                          // a clear winner near the end
  logits[1 * vocab + 5] = logits[1 * vocab + 900] = 60.0f;    // a tie: the lower id wins
  logits[1 * vocab + 7] = std::numeric_limits<float>::quiet_NaN();
  for (int i = 0; i < vocab; ++i) logits[2 * vocab + i] = -INFINITY;  // nothing finite: 0
  logits[3 * vocab + 12] = INFINITY;
  DeviceArray<float> d(logits);
  DeviceArray<std::int32_t> out(4);
  LOOM_CUDA_CHECK(kernels::cuda::argmax_rows(d.data(), 4, vocab, out.data(), nullptr));
  EXPECT_EQ(out.read(), (std::vector<std::int32_t>{31000, 5, 0, 12}));
}

// RoPE + split against a float64 rotation with the same table; QK-norm in float64 as well. The
// head sizes take both kernels: vectorised (8, 64, 128, 256; 1 to 32 threads per head) and
// scalar (48: three threads per head would not be a power of two).
struct RopeCase {
  int head_dim;
  bool interleaved;
  bool qk_norm;
};

class CudaRope : public ::testing::TestWithParam<std::tuple<DType, RopeCase>> {};

TEST_P(CudaRope, SplitsNormalisesAndRotates) {
  LOOM_REQUIRE_GPU();
  const auto [dtype, c] = GetParam();
  const int T = 7, heads = 4, kv = 2, d = c.head_dim, half = d / 2, positions = 300;
  std::mt19937 rng(99);
  auto qkv = random_floats(static_cast<std::size_t>(T) * (heads + 2 * kv) * d, rng);
  round_to(qkv, dtype);
  auto qn = random_floats(d, rng), kn = random_floats(d, rng);
  round_to(qn, dtype);
  round_to(kn, dtype);
  const std::vector<std::int32_t> pos = {0, 1, 2, 150, 151, 298, 299};
  auto inv_freq = kernels::cpu::rope_inverse_frequencies(d, 10000.0, {});
  std::vector<std::int32_t> all(positions);
  for (int p = 0; p < positions; ++p) all[p] = p;
  std::vector<float> cos(positions * half), sin(positions * half), table(positions * d);
  kernels::cpu::rope_cos_sin(inv_freq, all.data(), positions, cos.data(), sin.data());
  for (int p = 0; p < positions; ++p)
    for (int i = 0; i < half; ++i) {
      table[p * d + i] = cos[p * half + i];
      table[p * d + half + i] = sin[p * half + i];
    }
  DeviceHalf dqkv(qkv, dtype), dqn(qn, dtype), dkn(kn, dtype);
  DeviceHalf q(T * heads * d, dtype), k(T * kv * d, dtype), v(T * kv * d, dtype);
  DeviceArray<std::int32_t> dpos(pos);
  DeviceArray<float> dtable(table);
  kernels::cuda::RopeSplitArgs a;
  a.qkv = dqkv.data();
  a.positions = dpos.data();
  a.cos_sin = dtable.data();
  a.table_positions = positions;
  a.num_tokens = T;
  a.num_heads = heads;
  a.num_kv_heads = kv;
  a.head_dim = d;
  a.interleaved = c.interleaved;
  a.q_norm = c.qk_norm ? dqn.data() : nullptr;
  a.k_norm = c.qk_norm ? dkn.data() : nullptr;
  a.norm_eps = 1e-6f;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  LOOM_CUDA_CHECK(kernels::cuda::rope_split_qkv(a, dtype, nullptr));

  std::vector<double> ref_q(q.size), ref_k(k.size), ref_v(v.size);
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < heads + 2 * kv; ++h) {
      const float* src = &qkv[(static_cast<std::size_t>(t) * (heads + 2 * kv) + h) * d];
      std::vector<double> x(src, src + d);
      if (h >= heads + kv) {
        std::copy(x.begin(), x.end(), ref_v.begin() + (t * kv + h - heads - kv) * d);
        continue;
      }
      if (c.qk_norm) {
        const auto& w = h < heads ? qn : kn;
        double ss = 0;
        for (double value : x) ss += value * value;
        const double inv = 1.0 / std::sqrt(ss / d + 1e-6);
        for (int i = 0; i < d; ++i) x[i] *= inv * w[i];
      }
      std::vector<double> y(d);
      for (int i = 0; i < half; ++i) {
        const int ia = c.interleaved ? 2 * i : i, ib = c.interleaved ? 2 * i + 1 : i + half;
        const double cs = cos[pos[t] * half + i], sn = sin[pos[t] * half + i];
        y[ia] = x[ia] * cs - x[ib] * sn;
        y[ib] = x[ia] * sn + x[ib] * cs;
      }
      auto& dst = h < heads ? ref_q : ref_k;
      const int slot = h < heads ? t * heads + h : t * kv + h - heads;
      std::copy(y.begin(), y.end(), dst.begin() + slot * d);
    }
  }
  EXPECT_LE(relative_error(q.read(), ref_q), tolerance(dtype));
  EXPECT_LE(relative_error(k.read(), ref_k), tolerance(dtype));
  EXPECT_LE(relative_error(v.read(), ref_v), 0.0) << "v is copied exactly";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRope,
                         ::testing::Combine(::testing::Values(DType::f16, DType::bf16),
                                            ::testing::Values(RopeCase{8, true, false}, RopeCase{48, false, false},
                                                              RopeCase{64, false, true}, RopeCase{128, false, false},
                                                              RopeCase{128, true, true}, RopeCase{256, false, true},
                                                              RopeCase{256, true, true})));

}  // namespace
}  // namespace loom::testing
