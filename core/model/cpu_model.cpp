#include "core/model/cpu_model.h"

#include <cmath>
#include <string>

#include "core/io/dtype.h"
#include "core/model/config_adapters.h"
#include "loom/error.h"
#include "loom/kernels/cpu/elementwise.h"
#include "loom/kernels/cpu/linear.h"
#include "loom/kernels/cpu/moe_routing.h"
#include "loom/kernels/cpu/rope.h"
#include "core/sampling/sampler.h"

namespace loom {

namespace cpu = kernels::cpu;

namespace {

// y[T, out] = x[T, in] W^T (+ b) for a weight that may be absent-biased.
void linear(const float* x, int T, const io::Tensor& w, const io::Tensor& bias, float* y) {
  cpu::linear(x, T, static_cast<int>(w.dim(1)), w.data(), static_cast<int>(w.dim(0)),
              bias.empty() ? nullptr : bias.data(), y);
}

// `x` as the 16-bit type stores it (round to nearest even), back in fp32.
float stored_as(sdk::DType dtype, float x) {
  return dtype == sdk::DType::bf16 ? io::bf16_to_fp32(io::fp32_to_bf16(x)) : io::fp16_to_fp32(io::fp32_to_fp16(x));
}

io::Tensor rounded(const io::Tensor& t, sdk::DType dtype) {
  if (t.empty()) return t;
  std::vector<float> values(t.values().begin(), t.values().end());
  for (float& v : values) v = stored_as(dtype, v);
  return io::Tensor::owned(t.shape(), std::move(values));
}

template <typename T>
T* sized(std::vector<T>& buffer, std::size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

sdk::TensorView view(float* data, std::int64_t rows, std::int64_t heads, std::int64_t dim) {
  sdk::TensorView v;
  v.data = data;
  v.dtype = sdk::DType::f32;
  v.rank = 3;
  v.shape = {rows, heads, dim, 0};
  return v;
}

}  // namespace

CpuModel::CpuModel(io::LoadedModel model, std::optional<LayerRange> layers)
    : model_(std::move(model)), layers_(layers.value_or(LayerRange{0, model_.weights.layers.size()})) {
  const auto& c = model_.config;
  if (layers_.end > model_.weights.layers.size() || layers_.first > layers_.end)
    throw Error("CpuModel: layers [" + std::to_string(layers_.first) + ", " + std::to_string(layers_.end) +
                ") of a model of " + std::to_string(model_.weights.layers.size()));
  auto& w = model_.weights;
  for (std::size_t l = 0; l < w.layers.size(); ++l)
    if (l < layers_.first || l >= layers_.end) w.layers[l] = {};  // another stage's
  // A forward pass reads every weight once, the embedding only for its rows: count the lm head
  // (the embedding itself when tied) but not the embedding table.
  std::uint64_t elements = io::num_parameters(w);
  if (w.lm_head.data() != w.token_embedding.data()) elements -= w.token_embedding.numel();
  weight_bytes_ = elements * sizeof(float);
  const cpu::RopeScaling scaling = rope_scaling_of(c.rope_scaling);
  inv_freq_ = cpu::rope_inverse_frequencies(static_cast<int>(c.head_dim), c.rope_theta, scaling);
  rope_scale_ = scaling.attention_factor;
  heads_ = static_cast<std::uint32_t>(c.num_attention_heads);
  kv_heads_ = static_cast<std::uint32_t>(c.num_key_value_heads);
}

CpuModel::CpuModel(io::LoadedModel model, const sdk::RankLayout& layout, sdk::Parallel& parallel)
    : CpuModel(std::move(model), LayerRange{layout.first_layer, layout.end_layer}) {
  share_ = rank_share(model_.config, layout);
  parallel_ = &parallel;
  keep_share(model_.weights, model_.config, *share_);
  heads_ = share_->heads;
  kv_heads_ = share_->kv_heads;
  std::uint64_t elements = io::num_parameters(model_.weights);
  if (model_.weights.lm_head.data() != model_.weights.token_embedding.data())
    elements -= model_.weights.token_embedding.numel();
  weight_bytes_ = elements * sizeof(float);
}

void CpuModel::all_reduce(float* x, std::size_t n) {
  sdk::TensorView v;
  v.data = x;
  v.dtype = sdk::DType::f32;
  v.rank = 1;
  v.shape = {static_cast<std::int64_t>(n), 0, 0, 0};
  parallel_->all_reduce_sum(share_->layout.rank, v, nullptr);
}

sdk::AttentionBatch CpuModel::attention_batch(std::span<const sdk::AttentionSeq> seqs, std::uint32_t num_tokens) const {
  sdk::AttentionBatch batch = attention_batch_of(model_.config, seqs, num_tokens);
  batch.num_heads = heads_;
  batch.num_kv_heads = kv_heads_;
  return batch;
}

void CpuModel::store_like(sdk::DType dtype) {
  if (dtype != sdk::DType::bf16 && dtype != sdk::DType::f16)
    throw Error("CpuModel::store_like: bf16 or f16, not " + std::string(sdk::dtype_name(dtype)));
  stored_as_ = dtype;
  auto& w = model_.weights;
  const bool tied = w.lm_head.data() == w.token_embedding.data();
  w.token_embedding = rounded(w.token_embedding, dtype);
  w.lm_head = tied ? w.token_embedding : rounded(w.lm_head, dtype);
  w.final_norm = rounded(w.final_norm, dtype);
  auto ffn = [&](io::Tensor& gate, io::Tensor& up, io::Tensor& down) {
    gate = rounded(gate, dtype), up = rounded(up, dtype), down = rounded(down, dtype);
  };
  for (io::LayerWeights& l : w.layers) {
    for (io::Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm, &l.k_norm,
                          &l.ffn_norm, &l.router, &l.shared_expert_gate})
      *t = rounded(*t, dtype);
    ffn(l.w_gate, l.w_up, l.w_down);
    for (io::ExpertWeights& e : l.experts) ffn(e.w_gate, e.w_up, e.w_down);
    ffn(l.shared_expert.w_gate, l.shared_expert.w_up, l.shared_expert.w_down);
  }
}

void CpuModel::store(float* x, std::size_t n) const {
  if (!stored_as_) return;
  for (std::size_t i = 0; i < n; ++i) x[i] = stored_as(*stored_as_, x[i]);
}

sdk::ModelShape CpuModel::shape() const { return shape_of(model_.config, 4); }

std::string CpuModel::describe() const { return "cpu, fp32"; }

std::unique_ptr<KvCache> CpuModel::make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) {
  const sdk::ModelShape s = shape();
  return std::make_unique<CpuKvCache>(s.num_layers, num_blocks, block_size, kv_heads_, s.head_dim);
}

void CpuModel::forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  forward(batch, attention, cache, step_logits(batch.logit_rows.size()));
}

std::span<float> CpuModel::step_logits(std::size_t rows) {
  const std::size_t n = rows * static_cast<std::size_t>(model_.config.vocab_size);
  return {sized(step_logits_, n), n};
}

void CpuModel::read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                            std::span<std::int32_t> tokens) {
  clock_.start();
  const std::size_t vocab = static_cast<std::size_t>(model_.config.vocab_size);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::span<const float> row(step_logits_.data() + r * vocab, vocab);
    switch (rows[r].kind) {
      case OutputRow::Kind::greedy: tokens[r] = greedy_token(row); break;
      case OutputRow::Kind::sample: tokens[r] = sample_with_uniform(row, *rows[r].params, rows[r].uniform); break;
      case OutputRow::Kind::verify:
        tokens[r] = verify_draft_row(row, *rows[r].params, rows[r].draft, rows[r].draft_q, rows[r].draws).token;
        break;
      case OutputRow::Kind::logits:
        std::copy(row.begin(), row.end(), logits.begin() + static_cast<std::ptrdiff_t>(r * vocab));
        break;
      case OutputRow::Kind::score: break;
    }
  }
  clock_.mark("sampling + copies");
}

void CpuModel::read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                             std::span<TokenLogprobs> out) {
  const std::size_t vocab = static_cast<std::size_t>(model_.config.vocab_size);
  for (std::size_t r = 0; r < rows.size(); ++r)
    if (rows[r].logprobs >= 0)
      out[r] = token_logprobs({step_logits_.data() + r * vocab, vocab}, tokens[r], rows[r].logprobs);
}

void CpuModel::forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache,
                       std::span<float> logits) {
  if (logits.size() < batch.logit_rows.size() * static_cast<std::size_t>(model_.config.vocab_size))
    throw Error("CpuModel::forward: the logits buffer is too small for the rows requested");
  if (profile_decode_only_) clock_.set_enabled(every_sequence_adds_one_token(batch));
  clock_.start();
  embed(batch);
  attention.prepare(attention_batch(batch.seqs, static_cast<std::uint32_t>(batch.tokens.size())), cache, nullptr);
  clock_.mark("embedding");
  run_layers(batch, attention, cache);
  lm_head(batch, logits);
  clock_.end_step();
}

std::span<float> CpuModel::residual(int T) {
  const std::size_t n = static_cast<std::size_t>(T) * static_cast<std::size_t>(model_.config.hidden_size);
  return {sized(hidden_, n), n};
}

void CpuModel::embed(const ForwardBatch& batch) {
  const auto& c = model_.config;
  const int T = static_cast<int>(batch.tokens.size());
  const int H = static_cast<int>(c.hidden_size), vocab = static_cast<int>(c.vocab_size);
  throw_if_outside_vocabulary(batch.tokens, vocab);
  if (!share_ || !share_->vocab_split) {
    cpu::embedding(model_.weights.token_embedding.data(), vocab, H, batch.tokens.data(), T, residual(T).data());
    return;
  }
  // This rank's rows of the table; the other ranks' tokens come from their rows in the sum.
  float* x = residual(T).data();
  const std::int32_t begin = static_cast<std::int32_t>(share_->layout.vocab_begin);
  const std::int32_t end = static_cast<std::int32_t>(share_->layout.vocab_end);
  for (int t = 0; t < T; ++t) {
    float* row = x + static_cast<std::size_t>(t) * H;
    const std::int32_t id = batch.tokens[t];
    if (id >= begin && id < end)
      std::copy_n(model_.weights.token_embedding.data() + static_cast<std::size_t>(id - begin) * H, H, row);
    else
      std::fill_n(row, H, 0.0f);
  }
  all_reduce(x, static_cast<std::size_t>(T) * H);
}

void CpuModel::run_layers(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  const auto& c = model_.config;
  const int T = static_cast<int>(batch.tokens.size());
  clock_.start();  // again: a pipeline stage enters here, with its input received
  // RoPE angles depend only on positions: computed once per step for all layers and heads.
  const std::size_t half = static_cast<std::size_t>(c.head_dim / 2);
  float* cos = sized(cos_, T * half);
  float* sin = sized(sin_, T * half);
  cpu::rope_cos_sin(inv_freq_, batch.positions.data(), T, cos, sin, rope_scale_);
  clock_.mark("rope");
  for (std::size_t l = layers_.first; l < layers_.end; ++l) {
    if (batch.before_layer) batch.before_layer(static_cast<std::uint32_t>(l));
    attention_block(l, T, cos, sin, attention, cache);
    ffn_block(l, T);
  }
}

// Only the sampling rows go through the final norm and the (large) lm head.
void CpuModel::lm_head(const ForwardBatch& batch, std::span<float> logits) {
  const auto& c = model_.config;
  const auto& w = model_.weights;
  const int H = static_cast<int>(c.hidden_size), vocab = static_cast<int>(w.lm_head.dim(0));  // a share's rows
  const int R = static_cast<int>(batch.logit_rows.size());
  const float* hidden = hidden_.data();
  float* selected = sized(normed_, static_cast<std::size_t>(R) * H);
  for (int r = 0; r < R; ++r)
    std::copy_n(hidden + static_cast<std::size_t>(batch.logit_rows[r]) * H, H, selected + static_cast<std::size_t>(r) * H);
  cpu::rmsnorm(selected, w.final_norm.data(), R, H, static_cast<float>(c.rms_norm_eps), selected);
  store(selected, static_cast<std::size_t>(R) * H);
  clock_.mark("rmsnorm");
  cpu::linear(selected, R, H, w.lm_head.data(), vocab, nullptr, logits.data());
  clock_.mark("lm head");
}

void CpuModel::attention_block(std::size_t l, int T, const float* cos, const float* sin,
                               sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  const auto& c = model_.config;
  const auto& layer = model_.weights.layers[l];
  const int H = static_cast<int>(c.hidden_size), d = static_cast<int>(c.head_dim);
  const int heads = static_cast<int>(heads_), kv_heads = static_cast<int>(kv_heads_);
  const float eps = static_cast<float>(c.rms_norm_eps);
  float* hidden = hidden_.data();

  float* x = sized(normed_, static_cast<std::size_t>(T) * H);
  cpu::rmsnorm(hidden, layer.attn_norm.data(), T, H, eps, x);
  store(x, static_cast<std::size_t>(T) * H);
  clock_.mark("rmsnorm");
  float* q = sized(q_, static_cast<std::size_t>(T) * heads * d);
  float* k = sized(k_, static_cast<std::size_t>(T) * kv_heads * d);
  float* v = sized(v_, static_cast<std::size_t>(T) * kv_heads * d);
  linear(x, T, layer.wq, layer.bq, q);
  linear(x, T, layer.wk, layer.bk, k);
  linear(x, T, layer.wv, layer.bv, v);
  store(q, static_cast<std::size_t>(T) * heads * d);
  store(k, static_cast<std::size_t>(T) * kv_heads * d);
  store(v, static_cast<std::size_t>(T) * kv_heads * d);
  clock_.mark("qkv projection");
  if (c.qk_norm) {  // Qwen3: RMSNorm of each head before RoPE
    cpu::rmsnorm(q, layer.q_norm.data(), T * heads, d, eps, q);
    cpu::rmsnorm(k, layer.k_norm.data(), T * kv_heads, d, eps, k);
    clock_.mark("rmsnorm");
  }
  const auto pairing =
      c.rope_style == io::RopeStyle::kInterleaved ? cpu::RopePairing::interleaved : cpu::RopePairing::rotate_half;
  cpu::apply_rope(q, T, heads, d, cos, sin, pairing);
  cpu::apply_rope(k, T, kv_heads, d, cos, sin, pairing);
  store(q, static_cast<std::size_t>(T) * heads * d);
  store(k, static_cast<std::size_t>(T) * kv_heads * d);
  clock_.mark("rope");

  float* out = sized(attn_, static_cast<std::size_t>(T) * heads * d);
  attention.forward(static_cast<std::uint32_t>(l), view(q, T, heads, d), view(k, T, kv_heads, d),
                    view(v, T, kv_heads, d), cache, view(out, T, heads, d), nullptr);
  store(out, static_cast<std::size_t>(T) * heads * d);
  clock_.mark("attention (plugin)");
  float* projected = sized(proj_, static_cast<std::size_t>(T) * H);
  linear(out, T, layer.wo, layer.bo, projected);
  if (share_ && share_->heads_split) all_reduce(projected, static_cast<std::size_t>(T) * H);
  store(projected, static_cast<std::size_t>(T) * H);
  clock_.mark("o projection");
  cpu::add_inplace(hidden, projected, static_cast<std::int64_t>(T) * H);
  clock_.mark("residual add");
}

void CpuModel::ffn_block(std::size_t l, int T) {
  const auto& c = model_.config;
  const auto& layer = model_.weights.layers[l];
  const int H = static_cast<int>(c.hidden_size);
  float* hidden = hidden_.data();
  float* x = sized(normed_, static_cast<std::size_t>(T) * H);
  cpu::rmsnorm(hidden, layer.ffn_norm.data(), T, H, static_cast<float>(c.rms_norm_eps), x);
  store(x, static_cast<std::size_t>(T) * H);
  clock_.mark("rmsnorm");
  float* out = sized(proj_, static_cast<std::size_t>(T) * H);
  const bool moe = c.layer_is_moe(static_cast<std::int64_t>(l));
  if (moe) {
    moe_ffn(layer, T, x, out);
  } else {
    swiglu(layer.w_gate, layer.w_up, layer.w_down, T, x, out);
  }
  if (share_ && (share_->ffn_split || (moe && share_->experts_split)))
    all_reduce(out, static_cast<std::size_t>(T) * H);
  cpu::add_inplace(hidden, out, static_cast<std::int64_t>(T) * H);
  clock_.mark("residual add");
}

// out[n, hidden] = down(silu(gate(x)) * up(x)): the dense FFN, each expert and the shared expert.
void CpuModel::swiglu(const io::Tensor& w_gate, const io::Tensor& w_up, const io::Tensor& w_down, int n,
                      const float* x, float* out) {
  const int inter = static_cast<int>(w_gate.dim(0));
  float* gate = sized(gate_, static_cast<std::size_t>(n) * inter);
  float* up = sized(up_, static_cast<std::size_t>(n) * inter);
  linear(x, n, w_gate, {}, gate);
  linear(x, n, w_up, {}, up);
  store(gate, static_cast<std::size_t>(n) * inter);
  store(up, static_cast<std::size_t>(n) * inter);
  clock_.mark("gate/up projection");
  cpu::silu_and_mul(gate, up, static_cast<std::int64_t>(n) * inter, gate);
  store(gate, static_cast<std::size_t>(n) * inter);
  clock_.mark("silu * up");
  linear(gate, n, w_down, {}, out);
  store(out, static_cast<std::size_t>(n) * static_cast<std::size_t>(w_down.dim(0)));
  clock_.mark("down projection");
}

// Each token's routed output is the sum over its own top-k list, in that list's order, so the
// result does not depend on which other tokens share its experts.
void CpuModel::moe_ffn(const io::LayerWeights& layer, int T, const float* x, float* out) {
  const auto& c = model_.config;
  const int H = static_cast<int>(c.hidden_size), E = static_cast<int>(c.num_experts);
  const int k = static_cast<int>(c.num_experts_per_tok);
  float* logits = sized(router_logits_, static_cast<std::size_t>(T) * E);
  linear(x, T, layer.router, {}, logits);
  std::int32_t* ids = sized(route_ids_, static_cast<std::size_t>(T) * k);
  float* weights = sized(route_weights_, static_cast<std::size_t>(T) * k);
  cpu::route_top_k(logits, T, E, k, c.norm_topk_prob, ids, weights);

  float* routed = sized(routed_, static_cast<std::size_t>(T) * k * H);  // [T, k, H]
  std::vector<int> rows;  // (t * k + j) slots routed to expert e
  for (int e = 0; e < E; ++e) {
    if (layer.experts[e].w_gate.empty()) continue;  // another rank's (expert parallelism)
    rows.clear();
    for (int slot = 0; slot < T * k; ++slot)
      if (ids[slot] == e) rows.push_back(slot);
    if (rows.empty()) continue;
    const int n = static_cast<int>(rows.size());
    const auto& expert = layer.experts[e];
    float* in = sized(expert_in_, static_cast<std::size_t>(n) * H);
    for (int r = 0; r < n; ++r) std::copy_n(x + static_cast<std::size_t>(rows[r] / k) * H, H, in + static_cast<std::size_t>(r) * H);
    float* result = sized(expert_out_, static_cast<std::size_t>(n) * H);
    swiglu(expert.w_gate, expert.w_up, expert.w_down, n, in, result);
    for (int r = 0; r < n; ++r)
      std::copy_n(result + static_cast<std::size_t>(r) * H, H, routed + static_cast<std::size_t>(rows[r]) * H);
  }
  for (int t = 0; t < T; ++t) {
    float* y = out + static_cast<std::size_t>(t) * H;
    std::fill_n(y, H, 0.0f);
    for (int j = 0; j < k; ++j) {
      if (layer.experts[ids[t * k + j]].w_gate.empty()) continue;
      const float weight = weights[t * k + j];
      const float* r = routed + (static_cast<std::size_t>(t) * k + j) * H;
      for (int i = 0; i < H; ++i) y[i] += weight * r[i];
    }
  }
  if (!layer.shared_expert.w_gate.empty()) {  // Qwen2-MoE: a sigmoid-gated expert every token uses
    const auto& shared = layer.shared_expert;
    float* result = sized(expert_out_, static_cast<std::size_t>(T) * H);
    swiglu(shared.w_gate, shared.w_up, shared.w_down, T, x, result);
    float* gate_logit = sized(router_logits_, static_cast<std::size_t>(T));
    linear(x, T, layer.shared_expert_gate, {}, gate_logit);
    for (int t = 0; t < T; ++t) {
      const float g = 1.0f / (1.0f + std::exp(-gate_logit[t]));
      for (int i = 0; i < H; ++i) out[static_cast<std::size_t>(t) * H + i] += g * result[static_cast<std::size_t>(t) * H + i];
    }
  }
}

}  // namespace loom
