// CUDA relay attention against a float64 dense causal reference: paged attention over the rest of
// each sharing sequence's context (k_first at the prefix's end, log-sum-exps kept), then the
// prefix pass and merge. Varied: MHA and GQA, head sizes 8 to 256, block sizes 8/16/32, prefixes
// of whole blocks and ending inside a block, one to several query tokens per sharing sequence,
// sequences that share nothing in the same batch, chunks of 32 keys to the whole prefix. Padding
// rows must stay poisoned; a step with zero relay rows leaves paged attention's output as it is;
// the relay launches captured in a CUDA graph replay a different plan written into the same
// buffers.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernel_test_util.h"
#include "loom/kernels/cuda/attention_plan.h"
#include "loom/kernels/cuda/paged_attention.h"
#include "loom/kernels/cuda/relay_attention.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

using kernels::cuda::DType;
namespace kc = kernels::cuda;

struct Shape {
  int block_size, num_heads, num_kv_heads, head_dim;
};

struct SeqSpec {
  bool shares;  // starts with the shared prefix (and reads it in the relay pass)
  int history;  // tokens in the cache before this step, after the prefix for a sharing sequence
  int q_len;
};

struct Scenario {
  const char* name;
  int prefix;  // shared keys
  std::vector<SeqSpec> seqs;
};

double tolerance(DType dtype) { return dtype == DType::f16 ? 3.0 * std::ldexp(1.0, -11) : 3.0 * std::ldexp(1.0, -8); }

// The whole device state of one step: paged attention's plan and buffers, and relay's.
struct Step {
  DType dtype = DType::f16;
  Shape c{};
  int T = 0, pad = 3;
  std::vector<std::vector<float>> k, v;  // per sequence, dense over its context
  std::vector<float> q;
  std::vector<kc::AttentionSeqMeta> metas;
  std::vector<std::int32_t> relay_rows, prefix_blocks;
};

class CudaRelayAttention : public ::testing::TestWithParam<std::tuple<DType, Shape>> {};

std::vector<double> reference(const Step& s, const Scenario& sc) {
  const int H = s.c.num_heads, KV = s.c.num_kv_heads, d = s.c.head_dim, group = H / KV;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> ref(static_cast<std::size_t>(s.T) * H * d);
  for (std::size_t i = 0; i < sc.seqs.size(); ++i) {
    const kc::AttentionSeqMeta& m = s.metas[i];
    for (int r = 0; r < m.q_len; ++r) {
      const int row = m.q_start + r, position = m.ctx_len - m.q_len + r;
      for (int h = 0; h < H; ++h) {
        const int kvh = h / group;
        std::vector<double> w(position + 1);
        double mx = -1e300;
        for (int j = 0; j <= position; ++j) {
          double dot = 0;
          for (int x = 0; x < d; ++x)
            dot += double(s.q[(static_cast<std::size_t>(row) * H + h) * d + x]) *
                   s.k[i][(static_cast<std::size_t>(j) * KV + kvh) * d + x];
          w[j] = dot * scale;
          mx = std::max(mx, w[j]);
        }
        double sum = 0;
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (int x = 0; x < d; ++x) {
          double acc = 0;
          for (int j = 0; j <= position; ++j) acc += w[j] * s.v[i][(static_cast<std::size_t>(j) * KV + kvh) * d + x];
          ref[(static_cast<std::size_t>(row) * H + h) * d + x] = acc / sum;
        }
      }
    }
  }
  return ref;
}

void run_scenario(DType dtype, const Shape& c, const Scenario& sc, int sms) {
  SCOPED_TRACE(sc.name);
  std::mt19937 rng(77);
  const int d = c.head_dim, H = c.num_heads, KV = c.num_kv_heads, bs = c.block_size, group = H / KV;
  const int P = sc.prefix, row_elems = KV * d;
  Step s;
  s.dtype = dtype;
  s.c = c;
  for (const auto& q : sc.seqs) s.T += q.q_len;
  s.q = random_floats(static_cast<std::size_t>(s.T + s.pad) * H * d, rng);
  round_to(s.q, dtype);
  std::vector<float> shared_k = random_floats(static_cast<std::size_t>(P) * row_elems, rng);
  std::vector<float> shared_v = random_floats(shared_k.size(), rng);
  round_to(shared_k, dtype);
  round_to(shared_v, dtype);

  // Blocks: the prefix's (its last one partly filled when P ends inside a block), then each
  // sequence's own, in shuffled order.
  const int prefix_block_count = (P + bs - 1) / bs;
  int total_blocks = prefix_block_count;
  for (const auto& q : sc.seqs) total_blocks += ((q.shares ? P : 0) + q.history + q.q_len + bs - 1) / bs;
  std::vector<int> ids(total_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  int next_id = 0;
  for (int b = 0; b < prefix_block_count; ++b) s.prefix_blocks.push_back(ids[next_id++]);

  std::vector<float> k_cache(static_cast<std::size_t>(total_blocks) * bs * row_elems, 0.0f), v_cache(k_cache.size());
  std::vector<float> k_new(static_cast<std::size_t>(s.T + s.pad) * row_elems), v_new(k_new.size());
  auto put = [&](std::vector<float>& cache, int block, int offset, const float* src) {
    std::copy_n(src, row_elems, cache.begin() + (static_cast<std::size_t>(block) * bs + offset) * row_elems);
  };
  for (int p = 0; p < P; ++p) {
    put(k_cache, s.prefix_blocks[p / bs], p % bs, &shared_k[static_cast<std::size_t>(p) * row_elems]);
    put(v_cache, s.prefix_blocks[p / bs], p % bs, &shared_v[static_cast<std::size_t>(p) * row_elems]);
  }
  std::vector<std::int32_t> tables;
  int q_start = 0;
  for (std::size_t i = 0; i < sc.seqs.size(); ++i) {
    const SeqSpec& q = sc.seqs[i];
    const int first = q.shares ? P : 0, ctx = first + q.history + q.q_len;
    s.k.push_back(random_floats(static_cast<std::size_t>(ctx) * row_elems, rng));
    s.v.push_back(random_floats(s.k.back().size(), rng));
    if (q.shares) {
      std::copy(shared_k.begin(), shared_k.end(), s.k.back().begin());
      std::copy(shared_v.begin(), shared_v.end(), s.v.back().begin());
    }
    round_to(s.k.back(), dtype);
    round_to(s.v.back(), dtype);
    kc::AttentionSeqMeta meta{q_start, q.q_len, ctx, static_cast<std::int32_t>(tables.size()), first};
    s.metas.push_back(meta);
    // The whole blocks of the prefix are shared; a block the prefix ends inside is this
    // sequence's own copy (its later rows are the sequence's own).
    const int blocks = (ctx + bs - 1) / bs;
    for (int b = 0; b < blocks; ++b)
      tables.push_back(q.shares && (b + 1) * bs <= P ? s.prefix_blocks[b] : ids[next_id++]);
    for (int p = 0; p < ctx; ++p) {
      const int block = tables[meta.table_offset + p / bs];
      const float* ks = &s.k[i][static_cast<std::size_t>(p) * row_elems];
      const float* vs = &s.v[i][static_cast<std::size_t>(p) * row_elems];
      if (p < ctx - q.q_len) {
        put(k_cache, block, p % bs, ks);
        put(v_cache, block, p % bs, vs);
      } else {
        const int row = q_start + p - (ctx - q.q_len);
        std::copy_n(ks, row_elems, k_new.begin() + static_cast<std::size_t>(row) * row_elems);
        std::copy_n(vs, row_elems, v_new.begin() + static_cast<std::size_t>(row) * row_elems);
      }
    }
    if (q.shares)
      for (int r = 0; r < q.q_len; ++r) s.relay_rows.push_back(q_start + r);
    q_start += q.q_len;
  }

  kc::AttentionPlanLimits limits;
  limits.num_kv_heads = KV;
  limits.group = group;
  limits.target_items = 2 * sms;
  limits.max_partial_slots = 8 * sms;
  limits.min_keys_per_split = 32;
  const kc::AttentionPlan plan = kc::plan_attention(s.metas, limits);
  for (const auto& item : plan.items) ASSERT_GE(item.k_begin, s.metas[item.seq].k_first);

  DeviceHalf dq(s.q, dtype), dk(k_new, dtype), dv(v_new, dtype), dkc(k_cache, dtype), dvc(v_cache, dtype);
  DeviceHalf out(static_cast<std::size_t>(s.T + s.pad) * H * d, dtype);
  DeviceArray<std::int32_t> dtables(tables),
      counts(std::vector<std::int32_t>{static_cast<std::int32_t>(plan.items.size()), s.T});
  DeviceArray<std::int32_t> dslots(std::vector<std::int32_t>(s.T + s.pad, -1));
  runtime::DeviceBuffer dmeta(s.metas.size() * sizeof(kc::AttentionSeqMeta), "test");
  runtime::DeviceBuffer ditems(std::max<std::size_t>(1, plan.items.size()) * sizeof(kc::AttentionWorkItem), "test");
  LOOM_CUDA_CHECK(cudaMemcpy(dmeta.data(), s.metas.data(), dmeta.bytes(), cudaMemcpyHostToDevice));
  LOOM_CUDA_CHECK(cudaMemcpy(ditems.data(), plan.items.data(), plan.items.size() * sizeof(kc::AttentionWorkItem),
                             cudaMemcpyHostToDevice));
  const std::size_t partial_rows = static_cast<std::size_t>(std::max(1, plan.partial_slots)) * plan.rows_per_item;
  DeviceArray<float> partial_out(partial_rows * d), partial_ms(partial_rows * 2),
      lse(static_cast<std::size_t>(s.T + s.pad) * H);
  DeviceArray<int> split_counters(std::vector<int>(std::max(1, plan.partial_slots), 0));

  kc::PagedAttentionArgs a;
  a.q = dq.data();
  a.k_new = dk.data();
  a.v_new = dv.data();
  a.out = out.data();
  a.lse = lse.data();
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
  a.slots = dslots.data();
  a.counts = counts.data();
  a.max_tokens = s.T + s.pad;
  a.rows_per_item = plan.rows_per_item;
  a.partial_out = partial_out.data();
  a.partial_max_sum = partial_ms.data();
  a.split_counters = split_counters.data();
  a.grid = 4 * sms;

  const int tokens = static_cast<int>(s.relay_rows.size());
  const std::vector<double> ref = reference(s, sc);
  const std::size_t real_values = static_cast<std::size_t>(s.T) * H * d;
  DeviceArray<std::int32_t> drows(s.relay_rows.empty() ? std::vector<std::int32_t>{0} : s.relay_rows);
  DeviceArray<std::int32_t> dprefix(s.prefix_blocks.empty() ? std::vector<std::int32_t>{0} : s.prefix_blocks);
  for (int keys_per_chunk : {32, 96, std::max(P, 1)}) {
    SCOPED_TRACE("keys per chunk " + std::to_string(keys_per_chunk));
    const int chunks = (P + keys_per_chunk - 1) / keys_per_chunk;
    DeviceArray<std::int32_t> relay_counts(std::vector<std::int32_t>{tokens, P, keys_per_chunk});
    DeviceArray<float> relay_partial(std::max<std::size_t>(1, static_cast<std::size_t>(chunks) * tokens * H * (d + 2)));
    kc::RelayAttentionArgs r;
    r.q = dq.data();
    r.out = out.data();
    r.lse = lse.data();
    r.k_cache = dkc.data();
    r.v_cache = dvc.data();
    r.block_size = bs;
    r.num_heads = H;
    r.num_kv_heads = KV;
    r.head_dim = d;
    r.scale = a.scale;
    r.rows = drows.data();
    r.prefix_blocks = dprefix.data();
    r.counts = relay_counts.data();
    r.partial = relay_partial.data();
    r.grid = kc::relay_attention_grid(dtype, d);
    ASSERT_GT(r.grid, 0);
    out.poison();
    LOOM_CUDA_CHECK(kc::paged_attention(a, dtype, nullptr));
    LOOM_CUDA_CHECK(kc::relay_attention(r, dtype, nullptr));
    // The rows of real tokens: the padding rows stay NaN, which no vector comparison equals.
    auto real_part = [&](const std::vector<float>& all) {
      return std::vector<float>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(real_values));
    };
    const std::vector<float> got = out.read();
    EXPECT_LE(relative_error(real_part(got), ref), tolerance(dtype)) << tokens << " relay rows, " << chunks << " chunks";
    for (std::size_t i = real_values; i < got.size(); ++i) ASSERT_TRUE(std::isnan(got[i])) << "padding row written";
    if (keys_per_chunk != 96) continue;

    // The relay launches captured in a graph while the plan has zero rows: replayed so, they
    // leave paged attention's output bit for bit; replayed after the real plan is written into
    // the same buffer, they give the result above.
    const std::vector<float> direct = got;
    const std::vector<std::int32_t> no_rows{0, P, keys_per_chunk}, real_plan{tokens, P, keys_per_chunk};
    LOOM_CUDA_CHECK(cudaMemcpy(relay_counts.data(), no_rows.data(), 12, cudaMemcpyHostToDevice));
    cudaStream_t stream = nullptr;
    LOOM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    LOOM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    LOOM_CUDA_CHECK(kc::relay_attention(r, dtype, stream));
    LOOM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    LOOM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    out.poison();
    LOOM_CUDA_CHECK(kc::paged_attention(a, dtype, stream));
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
    const std::vector<float> paged_only = out.read();
    LOOM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
    EXPECT_EQ(real_part(out.read()), real_part(paged_only)) << "zero relay rows changed the output";
    if (tokens > 0) {
      EXPECT_NE(real_part(paged_only), real_part(direct)) << "the shared prefix made no difference: the test shows nothing";
    }
    LOOM_CUDA_CHECK(cudaMemcpy(relay_counts.data(), real_plan.data(), 12, cudaMemcpyHostToDevice));
    LOOM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
    EXPECT_EQ(real_part(out.read()), real_part(direct)) << "graph replay of a new plan";
    LOOM_CUDA_CHECK(cudaGraphExecDestroy(exec));
    LOOM_CUDA_CHECK(cudaGraphDestroy(graph));
    LOOM_CUDA_CHECK(cudaStreamDestroy(stream));
  }
}

TEST_P(CudaRelayAttention, PagedPlusPrefixPassMatchesFloat64ForSharedPrefixesOfAnyLength) {
  LOOM_REQUIRE_GPU();
  const auto [dtype, shape] = GetParam();
  const int bs = shape.block_size;
  const std::vector<Scenario> scenarios = {
      {"decodes behind whole prefix blocks, two sequences sharing nothing",
       4 * bs,
       {{true, 0, 1}, {true, 3, 1}, {false, 40, 1}, {true, 17, 1}, {true, bs, 1}, {false, 0, 5}}},
      {"a prefix ending inside a block; several tokens per sequence",
       3 * bs + 5,
       {{true, 0, 3}, {true, 9, 2}, {true, 30, 1}, {false, 12, 4}}},
      {"forty sequences behind a long prefix", 37 * bs + 3, std::vector<SeqSpec>(40, SeqSpec{true, 7, 1})},
  };
  const int sms = runtime::multiprocessor_count();
  for (const auto& s : scenarios) run_scenario(dtype, shape, s, sms);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRelayAttention,
                         ::testing::Combine(::testing::Values(DType::f16, DType::bf16),
                                            ::testing::Values(Shape{16, 8, 8, 128}, Shape{16, 32, 8, 128},
                                                              Shape{8, 8, 4, 8}, Shape{16, 6, 6, 48},
                                                              Shape{32, 8, 2, 64}, Shape{16, 4, 2, 256})));

}  // namespace
}  // namespace loom::testing
