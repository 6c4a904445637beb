// The CUDA paged attention (planner + KV write + kernel + split-K merge) against a float64 dense
// causal reference, on shuffled block tables, block sizes 8/16/32, MHA and GQA, head sizes
// 8/48/64/128, mixed prefill/decode batches, long contexts that split, and padding rows that
// must stay untouched; the cache must hold the step's K/V afterwards, and a second launch (the
// split counters reset by the first) must give the same output. Inputs are rounded to 16 bits first; the tolerance is the output's
// rounding (see cuda_elementwise_test.cpp) with a margin for fp32 accumulation.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernel_test_util.h"
#include "loom/kernels/cuda/attention_plan.h"
#include "loom/kernels/cuda/paged_attention.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

using kernels::cuda::DType;
namespace kc = kernels::cuda;

struct Shape {
  int block_size, num_heads, num_kv_heads, head_dim;
};

struct SeqSpec {
  int history;  // tokens already in the cache
  int q_len;    // tokens of this step
};

struct Scenario {
  const char* name;
  std::vector<SeqSpec> seqs;
};

double tolerance(DType dtype) { return dtype == DType::f16 ? 3.0 * std::ldexp(1.0, -11) : 3.0 * std::ldexp(1.0, -8); }

class CudaPagedAttention : public ::testing::TestWithParam<std::tuple<DType, Shape>> {};

void run_scenario(DType dtype, const Shape& c, const Scenario& scenario, int sms, bool tensor_cores) {
  SCOPED_TRACE(std::string(scenario.name) + (tensor_cores ? ", prefill on tensor cores" : ", all on CUDA cores"));
  std::mt19937 rng(2024);
  const int d = c.head_dim, H = c.num_heads, KV = c.num_kv_heads, bs = c.block_size, group = H / KV;
  const int pad = 3;  // padding rows after the batch, as CUDA graphs add
  int T = 0, total_blocks = 0;
  for (const auto& s : scenario.seqs) {
    T += s.q_len;
    total_blocks += (s.history + s.q_len + bs - 1) / bs;
  }
  // Dense K/V per sequence (history + step), rounded; queries rounded.
  std::vector<std::vector<float>> k(scenario.seqs.size()), v(scenario.seqs.size());
  std::vector<float> q = random_floats(static_cast<std::size_t>(T + pad) * H * d, rng);
  round_to(q, dtype);
  std::vector<int> block_ids(total_blocks);
  std::iota(block_ids.begin(), block_ids.end(), 0);
  std::shuffle(block_ids.begin(), block_ids.end(), rng);

  std::vector<float> k_cache(static_cast<std::size_t>(total_blocks) * bs * KV * d, 0.0f), v_cache(k_cache.size(), 0.0f);
  std::vector<float> k_new(static_cast<std::size_t>(T + pad) * KV * d), v_new(k_new.size());
  kc::AttentionPlanLimits limits;
  limits.num_kv_heads = KV;
  limits.group = group;
  limits.target_items = 2 * sms;
  limits.max_partial_slots = 8 * sms;
  limits.prefill_min_q_len = tensor_cores ? 16 : 0;
  std::vector<kc::AttentionSeqMeta> metas;
  std::vector<std::int32_t> tables, slots(T + pad, -1);
  int next_block = 0, q_start = 0;
  for (std::size_t i = 0; i < scenario.seqs.size(); ++i) {
    const auto& s = scenario.seqs[i];
    const int ctx = s.history + s.q_len;
    k[i] = random_floats(static_cast<std::size_t>(ctx) * KV * d, rng);
    v[i] = random_floats(k[i].size(), rng);
    round_to(k[i], dtype);
    round_to(v[i], dtype);
    const int blocks = (ctx + bs - 1) / bs;
    metas.push_back({q_start, s.q_len, ctx, static_cast<std::int32_t>(tables.size())});
    for (int b = 0; b < blocks; ++b) tables.push_back(block_ids[next_block++]);
    for (int p = 0; p < ctx; ++p) {
      const std::size_t slot = static_cast<std::size_t>(tables[metas.back().table_offset + p / bs]) * bs + p % bs;
      const float* ks = &k[i][static_cast<std::size_t>(p) * KV * d];
      const float* vs = &v[i][static_cast<std::size_t>(p) * KV * d];
      if (p < s.history) {  // history is in the cache already
        std::copy(ks, ks + KV * d, k_cache.begin() + slot * KV * d);
        std::copy(vs, vs + KV * d, v_cache.begin() + slot * KV * d);
      } else {  // the step's tokens arrive in k_new / v_new, for the kernel to store
        const int row = q_start + p - s.history;
        std::copy(ks, ks + KV * d, k_new.begin() + static_cast<std::size_t>(row) * KV * d);
        std::copy(vs, vs + KV * d, v_new.begin() + static_cast<std::size_t>(row) * KV * d);
        // As the plugin does: only tokens of prefill tiles are copied to the cache first; the
        // work items store the others themselves.
        if (kc::goes_to_prefill_kernel(s.q_len, limits)) slots[row] = static_cast<std::int32_t>(slot);
      }
    }
    q_start += s.q_len;
  }
  const kc::AttentionPlan plan = kc::plan_attention(metas, limits);

  DeviceHalf dq(q, dtype), dk(k_new, dtype), dv(v_new, dtype), dkc(k_cache, dtype), dvc(v_cache, dtype);
  DeviceHalf out(static_cast<std::size_t>(T + pad) * H * d, dtype);
  DeviceArray<std::int32_t> dslots(slots), dtables(tables.empty() ? std::vector<std::int32_t>{0} : tables);
  DeviceArray<std::int32_t> counts(std::vector<std::int32_t>{static_cast<std::int32_t>(plan.items.size()), T});
  runtime::DeviceBuffer dmeta(metas.size() * sizeof(kc::AttentionSeqMeta), "test");
  runtime::DeviceBuffer ditems(std::max<std::size_t>(1, plan.items.size()) * sizeof(kc::AttentionWorkItem), "test");
  runtime::DeviceBuffer dtiles(std::max<std::size_t>(1, plan.prefill_tiles.size()) * sizeof(kc::PrefillTile), "test");
  LOOM_CUDA_CHECK(cudaMemcpy(dtiles.data(), plan.prefill_tiles.data(), plan.prefill_tiles.size() * sizeof(kc::PrefillTile),
                             cudaMemcpyHostToDevice));
  LOOM_CUDA_CHECK(cudaMemcpy(dmeta.data(), metas.data(), dmeta.bytes(), cudaMemcpyHostToDevice));
  LOOM_CUDA_CHECK(cudaMemcpy(ditems.data(), plan.items.data(), plan.items.size() * sizeof(kc::AttentionWorkItem),
                             cudaMemcpyHostToDevice));
  const std::size_t partial_rows = static_cast<std::size_t>(std::max(1, plan.partial_slots)) * plan.rows_per_item;
  DeviceArray<float> partial_out(partial_rows * d), partial_ms(partial_rows * 2);
  DeviceArray<int> split_counters(std::vector<int>(std::max(1, plan.partial_slots), 0));

  kc::PagedAttentionArgs a;
  a.q = dq.data();
  a.k_new = dk.data();
  a.v_new = dv.data();
  a.out = out.data();
  a.k_cache = dkc.data();
  a.v_cache = dvc.data();
  a.block_size = bs;
  a.num_heads = H;
  a.num_kv_heads = KV;
  a.head_dim = d;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  a.seqs = static_cast<const kc::AttentionSeqMeta*>(dmeta.data());
  a.block_tables = dtables.data();
  a.items = static_cast<const kc::AttentionWorkItem*>(ditems.data());
  a.prefill_tiles = static_cast<const kc::PrefillTile*>(dtiles.data());
  a.num_prefill_tiles = static_cast<int>(plan.prefill_tiles.size());
  a.slots = dslots.data();
  a.counts = counts.data();
  a.max_tokens = T + pad;
  a.rows_per_item = plan.rows_per_item;
  a.partial_out = partial_out.data();
  a.partial_max_sum = partial_ms.data();
  a.split_counters = split_counters.data();
  a.grid = 4 * sms;
  LOOM_CUDA_CHECK(kc::paged_attention(a, dtype, nullptr));
  const std::vector<float> got = out.read();
  // Every position of every sequence is in the cache now (history and the step's own tokens).
  std::vector<float> want_k(k_cache.size(), 0.0f), want_v(v_cache.size(), 0.0f);
  for (std::size_t i = 0; i < scenario.seqs.size(); ++i)
    for (int p = 0; p < metas[i].ctx_len; ++p) {
      const std::size_t slot = static_cast<std::size_t>(tables[metas[i].table_offset + p / bs]) * bs + p % bs;
      std::copy_n(&k[i][static_cast<std::size_t>(p) * KV * d], KV * d, want_k.begin() + slot * KV * d);
      std::copy_n(&v[i][static_cast<std::size_t>(p) * KV * d], KV * d, want_v.begin() + slot * KV * d);
    }
  ASSERT_EQ(dkc.read(), want_k) << "K cache after the step";
  ASSERT_EQ(dvc.read(), want_v) << "V cache after the step";
  ASSERT_EQ(split_counters.read(), std::vector<int>(std::max(1, plan.partial_slots), 0)) << "split counters left at zero";
  // A replay (as a CUDA graph does) merges again from zeroed counters: the same output.
  LOOM_CUDA_CHECK(kc::paged_attention(a, dtype, nullptr));
  const std::vector<float> again = out.read();
  const std::size_t real_values = static_cast<std::size_t>(T) * H * d;
  ASSERT_TRUE(std::equal(got.begin(), got.begin() + real_values, again.begin())) << "second launch";

  // float64 reference per sequence; padding rows must still be NaN.
  std::vector<float> real(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(T) * H * d);
  std::vector<double> ref(real.size());
  for (std::size_t i = 0; i < scenario.seqs.size(); ++i) {
    const auto& s = scenario.seqs[i];
    for (int r = 0; r < s.q_len; ++r) {
      const int row = metas[i].q_start + r, position = s.history + r;
      for (int h = 0; h < H; ++h) {
        const int kvh = h / group;
        std::vector<double> w(position + 1);
        double mx = -1e300;
        for (int j = 0; j <= position; ++j) {
          double dot = 0;
          for (int x = 0; x < d; ++x)
            dot += double(q[(static_cast<std::size_t>(row) * H + h) * d + x]) * k[i][(static_cast<std::size_t>(j) * KV + kvh) * d + x];
          w[j] = dot * a.scale;
          mx = std::max(mx, w[j]);
        }
        double sum = 0;
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (int x = 0; x < d; ++x) {
          double acc = 0;
          for (int j = 0; j <= position; ++j) acc += w[j] * v[i][(static_cast<std::size_t>(j) * KV + kvh) * d + x];
          ref[(static_cast<std::size_t>(row) * H + h) * d + x] = acc / sum;
        }
      }
    }
  }
  EXPECT_LE(relative_error(real, ref), tolerance(dtype)) << "items " << plan.items.size() << ", split slots "
                                                         << plan.partial_slots;
  for (std::size_t i = real.size(); i < got.size(); ++i) ASSERT_TRUE(std::isnan(got[i])) << "padding row written";
}

TEST_P(CudaPagedAttention, MatchesFloat64OnMixedBatchesAndLongContexts) {
  LOOM_REQUIRE_GPU();
  const auto [dtype, shape] = GetParam();
  const int sms = runtime::multiprocessor_count();
  const std::vector<Scenario> scenarios = {
      {"one decode, long context (split-K)", {{1500, 1}}},
      {"mixed: prefill, chunk after history, decodes", {{0, 37}, {50, 20}, {0, 1}, {16, 1}, {299, 1}}},
      {"a prefill chunk over a long history (split tiles)", {{1200, 5}}},
      {"many decodes (no split)", std::vector<SeqSpec>(64, SeqSpec{40, 1})},
      {"prefill of exactly one block", {{0, shape.block_size}}},
      {"long prefills: ragged tiles of 64", {{0, 200}, {70, 130}, {0, 64}, {5, 1}}},
  };
  const bool tensor_cores = kc::prefill_kernel_supports(shape.head_dim);
  for (const auto& s : scenarios) {
    run_scenario(dtype, shape, s, sms, false);
    if (tensor_cores) run_scenario(dtype, shape, s, sms, true);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaPagedAttention,
                         ::testing::Combine(::testing::Values(DType::f16, DType::bf16),
                                            ::testing::Values(Shape{16, 4, 4, 128}, Shape{32, 8, 2, 64},
                                                              Shape{16, 6, 6, 48}, Shape{8, 8, 4, 8},
                                                              Shape{16, 32, 8, 128}, Shape{16, 12, 4, 64},
                                                              Shape{16, 16, 2, 128})));

}  // namespace
}  // namespace loom::testing
