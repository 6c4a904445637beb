#include "core/model/cuda_model.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/model/config_adapters.h"
#include "core/model/cuda_kv_cache.h"
#include "loom/cuda_check.h"
#include "loom/error.h"
#include "loom/kernels/cuda/elementwise.h"
#include "loom/kernels/cuda/gemv.h"
#include "loom/kernels/cuda/rope.h"
#include "loom/kernels/cuda/sampling.h"

namespace loom {

namespace kc = kernels::cuda;

namespace {

// A sequence's tokens in a graphed step: its one token or its last token and up to 7 drafts.
// Longer query runs are prefill, for which attention backends launch other kernels.
constexpr std::uint32_t kMaxGraphQueryLen = 8;

}  // namespace

bool cuda_backend_compiled() { return true; }

void check_cuda_device(int index) { runtime::select_device(index); }

std::unique_ptr<Model> make_cuda_model(io::LoadedModel model, const CudaModelOptions& options) {
  return std::make_unique<CudaModel>(std::move(model), options);
}

CudaModel::CudaModel(io::LoadedModel model, const CudaModelOptions& options)
    : config_(model.config), options_(options), dtype_(options.fp16 ? kc::DType::f16 : kc::DType::bf16),
      stream_((runtime::select_device(options.device_index), runtime::CudaStream())) {
  const auto& c = config_;
  if (c.num_experts > 0)
    throw ModelError("mixture-of-experts models run on the CPU only in this version (the model has " +
                     std::to_string(c.num_experts) + " experts); set engine.device = \"cpu\"");
  if (c.head_dim % 8 != 0 || c.head_dim > 256)
    throw ModelError("the CUDA backend needs head_dim to be a multiple of 8 and at most 256 (the model's is " +
                     std::to_string(c.head_dim) + ")");
  linear_ = std::make_unique<runtime::CublasLinear>(stream_.get());
  weights_ = std::make_unique<CudaWeights>(model.weights, LayerRange{0, model.weights.layers.size()}, dtype_,
                                           stream_.get());
  // One-token steps fuse the norms, residual adds and SiLU into the GEMVs when every layer's
  // shape suits the GEMV and no o-projection bias sits between the GEMV and the residual add.
  fused_decode_ = linear_->own_gemv() && kc::gemv_supports(1, static_cast<int>(c.hidden_size)) &&
                  kc::gemv_supports(1, static_cast<int>(c.intermediate_size)) &&
                  kc::gemv_supports(1, static_cast<int>(c.num_attention_heads * c.head_dim));
  for (const CudaLayerWeights& w : weights_->layers()) fused_decode_ = fused_decode_ && w.bo == nullptr;
  // The rotary embedding joins the QKV GEMV too, unless a QK-norm (which needs whole heads) sits
  // between them.
  fused_rope_ = fused_decode_;
  for (const CudaLayerWeights& w : weights_->layers())
    fused_rope_ = fused_rope_ && w.q_norm == nullptr && w.k_norm == nullptr;
  rope_ = std::make_unique<CudaRopeTable>(c, static_cast<int>(options_.max_model_len));
  // Work buffers for the largest step; decode graphs pad up to max_num_seqs tokens. A sequence
  // verifying drafts samples a row per draft besides its own.
  const std::uint32_t max_tokens = std::max(options_.max_num_batched_tokens, options_.max_num_seqs);
  const std::uint32_t max_rows =
      max_logit_rows(options_.max_num_seqs, options_.max_num_batched_tokens, options_.max_draft_tokens);
  buffers_ = std::make_unique<CudaWorkBuffers>(c, max_tokens, max_rows);
  logprobs_.reserve(max_rows);  // now, not at the first step that asks, when the KV pool has the rest
  timer_ = std::make_unique<CudaStepTimer>(profiling_requested());
  stream_.synchronize();
}

CudaModel::~CudaModel() = default;

sdk::ModelShape CudaModel::shape() const { return shape_of(config_, static_cast<std::uint32_t>(kc::kElementSize)); }

std::string CudaModel::describe() const {
  return "cuda:" + std::to_string(options_.device_index) + " (" + runtime::device_name() + "), " +
         sdk::dtype_name(dtype_) + ", weights " + runtime::format_gib(weights_->allocated_bytes()) +
         ", work buffers " + runtime::format_gib(buffers_->bytes()) + ", CUDA graphs " +
         (!options_.cuda_graphs ? "off" : timer_->profiling() ? "off while profiling" : "on");
}

std::uint64_t CudaModel::kv_cache_budget(double gpu_memory_utilization) const {
  const runtime::DeviceMemoryInfo info = runtime::device_memory_info();
  const double allowed = gpu_memory_utilization * static_cast<double>(info.total_bytes);
  const double used = static_cast<double>(info.total_bytes - info.free_bytes);
  // Headroom for the attention plugin's metadata, CUDA graphs and the driver.
  const double reserve = 512.0 * 1024 * 1024;
  const double left = std::min(allowed - used, static_cast<double>(info.free_bytes)) - reserve;
  if (left <= 0)
    throw DeviceError("no GPU memory is left for the KV cache: engine.gpu_memory_utilization = " +
                      std::to_string(gpu_memory_utilization) + " allows " +
                      runtime::format_gib(static_cast<std::uint64_t>(allowed)) + ", and weights, work buffers and " +
                      "other processes already use " + runtime::format_gib(static_cast<std::uint64_t>(used)) +
                      " (raise the fraction, lower engine.max_num_batched_tokens, or set kv.num_blocks)");
  return static_cast<std::uint64_t>(left);
}

std::unique_ptr<KvCache> CudaModel::make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) {
  const sdk::ModelShape s = shape();
  auto cache = std::make_unique<CudaKvCache>(options_.device_index, kv_dtype(), s.num_layers, num_blocks, block_size,
                                             s.num_kv_heads, s.head_dim, stream_.get());
  stream_.synchronize();
  return cache;
}

int CudaModel::graph_batch_size(int T) const {
  // Phases are timed between kernels, which a graph hides: profiled steps run eagerly.
  if (!options_.cuda_graphs || timer_->profiling() || T <= 0) return 0;
  int size = T <= 8 ? 1 : 16;
  if (T <= 8) {
    while (size < T) size *= 2;
  } else {
    size = (T + 15) / 16 * 16;
  }
  return size <= static_cast<int>(buffers_->max_rows()) ? size : 0;
}

void CudaModel::forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  const int T = static_cast<int>(batch.tokens.size());
  const int R = static_cast<int>(batch.logit_rows.size());
  if (T > static_cast<int>(buffers_->max_tokens()) || R > static_cast<int>(buffers_->max_rows()))
    throw Error("CudaModel::forward: a step of " + std::to_string(T) + " tokens and " + std::to_string(R) +
                " sampling rows exceeds the buffers sized for " + std::to_string(buffers_->max_tokens()) + " and " +
                std::to_string(buffers_->max_rows()));
  // Steps that sample every token they run — decodes, and sequences verifying a few drafts —
  // replay a graph of their padded size; steps with prefill chunks run eagerly.
  bool every_row_sampled = R == T;
  for (const sdk::AttentionSeq& s : batch.seqs) every_row_sampled = every_row_sampled && s.q_len <= kMaxGraphQueryLen;
  if (profile_decode_only_) timer_->set_profiling(every_sequence_adds_one_token(batch));
  const int padded = every_row_sampled ? graph_batch_size(T) : 0;
  const int run_T = padded > 0 ? padded : T;
  const int run_R = padded > 0 ? padded : R;
  write_inputs(batch, run_T, run_R);
  last_rows_ = R;

  attention.prepare(attention_batch_of(config_, batch.seqs, static_cast<std::uint32_t>(T)), cache, stream_.get());
  const bool one_token = run_T == 1 && fused_decode_;
  const bool layer_by_layer = batch.before_layer && padded == 0 && !one_token;
  if (batch.before_layer && !layer_by_layer)
    for (std::size_t l = 0; l < weights_->layers().size(); ++l) batch.before_layer(static_cast<std::uint32_t>(l));
  const Step step{run_T,     run_R, buffers_->device_io(run_T, run_R), buffers_->host_io(run_T, run_R),
                  one_token, attention, cache, layer_by_layer ? &batch.before_layer : nullptr};
  timer_->start(stream_.get());
  if (padded == 0)
    enqueue_step(step);
  else
    graphs_.launch({padded, attention.graph_key()}, stream_.get(), [&] { enqueue_step(step); });
  timer_->stop(stream_.get());
}

void CudaModel::prepare_step(int num_tokens, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  if (graph_batch_size(num_tokens) != num_tokens) return;
  // Sequences of up to kMaxGraphQueryLen tokens (a verify step's shape), each in blocks of its own.
  const int T = num_tokens, seqs_needed = (T + kMaxGraphQueryLen - 1) / kMaxGraphQueryLen;
  const std::uint32_t blocks_per_seq = (kMaxGraphQueryLen + cache.block_size - 1) / cache.block_size;
  if (seqs_needed > static_cast<int>(options_.max_num_seqs) || seqs_needed * blocks_per_seq > cache.num_blocks) return;
  std::vector<std::int32_t> tokens(T, 0), positions(T), rows(T);
  std::vector<sdk::BlockId> tables(seqs_needed * blocks_per_seq);
  std::vector<sdk::AttentionSeq> seqs(seqs_needed);
  for (std::size_t b = 0; b < tables.size(); ++b) tables[b] = static_cast<sdk::BlockId>(b);
  for (int s = 0; s < seqs_needed; ++s) {
    sdk::AttentionSeq& a = seqs[s];
    a.id = static_cast<sdk::SeqId>(s);
    a.q_start = static_cast<std::uint32_t>(s * kMaxGraphQueryLen);
    a.q_len = static_cast<std::uint32_t>(std::min<int>(kMaxGraphQueryLen, T - s * kMaxGraphQueryLen));
    a.ctx_len = a.q_len;
    a.block_table = std::span<const sdk::BlockId>(tables).subspan(s * blocks_per_seq, blocks_per_seq);
    for (std::uint32_t i = 0; i < a.q_len; ++i) positions[a.q_start + i] = static_cast<std::int32_t>(i);
  }
  for (int r = 0; r < T; ++r) rows[r] = r;
  forward(ForwardBatch{tokens, positions, seqs, rows, {}}, attention, cache);
  stream_.synchronize();
}

// Tokens, positions and logit rows into pinned memory (padding rows are token 0 at position 0
// sampling themselves), then the bad-id flag; enqueue_step copies them in.
void CudaModel::write_inputs(const ForwardBatch& batch, int T, int R) {
  const StepIo in = buffers_->host_io(T, R);
  std::fill(std::copy(batch.tokens.begin(), batch.tokens.end(), in.tokens), in.positions, 0);
  std::fill(std::copy(batch.positions.begin(), batch.positions.end(), in.positions), in.rows, 0);
  std::copy(batch.logit_rows.begin(), batch.logit_rows.end(), in.rows);
  for (int r = static_cast<int>(batch.logit_rows.size()); r < R; ++r) in.rows[r] = r;
  *in.bad_id = -1;
  last_host_io_ = in;
}

sdk::TensorView CudaModel::view(const Step& step, void* data, std::int64_t heads) const {
  sdk::TensorView t;
  t.data = data;
  t.dtype = kv_dtype();
  t.device = device();
  t.rank = 3;
  t.shape = {step.T, heads, static_cast<std::int64_t>(config_.head_dim), 0};
  return t;
}

void CudaModel::enqueue_step(const Step& step) {
  // The step's inputs in, its greedy tokens out (logits_and_greedy): one small copy each way.
  LOOM_CUDA_CHECK(cudaMemcpyAsync(step.io.tokens, step.host.tokens,
                                  (step.host.greedy - step.host.tokens) * sizeof(std::int32_t),
                                  cudaMemcpyHostToDevice, stream_.get()));
  embed(step);
  for (std::size_t l = 0; l < weights_->layers().size(); ++l) {
    if (step.before_layer) (*step.before_layer)(static_cast<std::uint32_t>(l));
    attention_block(step, l);
    ffn_block(step, l);
  }
  logits_and_greedy(step);
}

void CudaModel::embed(const Step& step) {
  const auto& c = config_;
  LOOM_CUDA_CHECK(kc::embedding(weights_->embedding(), static_cast<int>(c.vocab_size), static_cast<int>(c.hidden_size),
                                step.io.tokens, step.T, static_cast<float*>(buffers_->activations().hidden),
                                step.io.bad_id, dtype_, stream_.get()));
  mark("embedding");
}

// A one-token step runs the fused GEMVs (gemv.h): the residual adds happen in the o and down
// projections' epilogues, the norms in the qkv, gate/up and lm-head projections' prologues.
// Otherwise the previous layer's FFN output joins the residual stream in this layer's first norm.
void CudaModel::attention_block(const Step& step, std::size_t l) {
  const auto& c = config_;
  const Activations& a = buffers_->activations();
  const CudaLayerWeights& w = weights_->layers()[l];
  const cudaStream_t s = stream_.get();
  const int T = step.T, H = static_cast<int>(c.hidden_size), d = static_cast<int>(c.head_dim);
  const int heads = static_cast<int>(c.num_attention_heads), kv = static_cast<int>(c.num_key_value_heads);
  const int qkv_width = (heads + 2 * kv) * d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto* hidden = static_cast<float*>(a.hidden);
  const auto layer = static_cast<std::uint32_t>(l);
  if (step.one_token && fused_rope_) {  // q, k and v heads rotated in place in qkv (one token)
    kc::GemvRope rope;
    rope.position = step.io.positions;
    rope.cos_sin = rope_->data();
    rope.table_positions = rope_->positions();
    rope.head_dim = d;
    rope.interleaved = c.rope_style == io::RopeStyle::kInterleaved;
    rope.rotary_rows = (heads + kv) * d;
    LOOM_CUDA_CHECK(kc::gemv_rmsnorm_rope(hidden, w.attn_norm, eps, H, w.w_qkv, qkv_width, w.b_qkv, rope, a.qkv,
                                          dtype_, s));
    mark("qkv projection + rope");
    auto* q = static_cast<unsigned char*>(a.qkv);
    const std::size_t head_bytes = static_cast<std::size_t>(d) * kc::kElementSize;
    step.attention.forward(layer, view(step, q, heads), view(step, q + heads * head_bytes, kv),
                           view(step, q + (heads + kv) * head_bytes, kv), step.cache, view(step, a.attn, heads), s);
  } else {
    if (step.one_token) {
      LOOM_CUDA_CHECK(kc::gemv_rmsnorm(hidden, w.attn_norm, eps, H, w.w_qkv, qkv_width, a.qkv, false, dtype_, s));
    } else {
      LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, l == 0 ? nullptr : a.proj, w.attn_norm, T, H, eps, a.normed, dtype_, s));
      mark("add + rmsnorm");
      linear_->run(a.normed, T, H, w.w_qkv, qkv_width, a.qkv, dtype_);
    }
    if (w.b_qkv) LOOM_CUDA_CHECK(kc::add_bias(a.qkv, w.b_qkv, T, qkv_width, dtype_, s));
    mark("qkv projection");
    kc::RopeSplitArgs rope;
    rope.qkv = a.qkv;
    rope.positions = step.io.positions;
    rope.cos_sin = rope_->data();
    rope.table_positions = rope_->positions();
    rope.num_tokens = T;
    rope.num_heads = heads;
    rope.num_kv_heads = kv;
    rope.head_dim = d;
    rope.interleaved = c.rope_style == io::RopeStyle::kInterleaved;
    rope.q_norm = w.q_norm;
    rope.k_norm = w.k_norm;
    rope.norm_eps = eps;
    rope.q = a.q;
    rope.k = a.k;
    rope.v = a.v;
    LOOM_CUDA_CHECK(kc::rope_split_qkv(rope, dtype_, s));
    mark("rope + split");
    step.attention.forward(layer, view(step, a.q, heads), view(step, a.k, kv), view(step, a.v, kv), step.cache,
                           view(step, a.attn, heads), s);
  }
  mark("attention (plugin)");
  if (step.one_token) {
    LOOM_CUDA_CHECK(kc::gemv_add_residual(a.attn, heads * d, w.wo, H, hidden, dtype_, s));
  } else {
    linear_->run(a.attn, T, heads * d, w.wo, H, a.proj, dtype_);
    if (w.bo) LOOM_CUDA_CHECK(kc::add_bias(a.proj, w.bo, T, H, dtype_, s));
  }
  mark("o projection");
}

void CudaModel::ffn_block(const Step& step, std::size_t l) {
  const auto& c = config_;
  const Activations& a = buffers_->activations();
  const CudaLayerWeights& w = weights_->layers()[l];
  const cudaStream_t s = stream_.get();
  const int T = step.T, H = static_cast<int>(c.hidden_size), inter = static_cast<int>(c.intermediate_size);
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto* hidden = static_cast<float*>(a.hidden);
  if (step.one_token) {
    LOOM_CUDA_CHECK(kc::gemv_rmsnorm_silu(hidden, w.ffn_norm, eps, H, w.w_gate_up, inter, a.act, dtype_, s));
    mark("gate/up projection");
    LOOM_CUDA_CHECK(kc::gemv_add_residual(a.act, inter, w.w_down, H, hidden, dtype_, s));
    mark("down projection");
    return;
  }
  LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, a.proj, w.ffn_norm, T, H, eps, a.normed, dtype_, s));
  mark("add + rmsnorm");
  linear_->run(a.normed, T, H, w.w_gate_up, 2 * inter, a.gate_up, dtype_);
  mark("gate/up projection");
  LOOM_CUDA_CHECK(kc::silu_and_mul(a.gate_up, T, inter, a.act, dtype_, s));
  mark("silu * up");
  linear_->run(a.act, T, inter, w.w_down, H, a.proj, dtype_);
  mark("down projection");
}

// Only the sampling rows go through the final norm and the lm head (the fused path has added
// the last FFN output already, and for its one row the norm is the lm-head GEMV's prologue).
void CudaModel::logits_and_greedy(const Step& step) {
  const auto& c = config_;
  const Activations& a = buffers_->activations();
  const cudaStream_t s = stream_.get();
  const int T = step.T, R = step.R, H = static_cast<int>(c.hidden_size), vocab = static_cast<int>(c.vocab_size);
  const float eps = static_cast<float>(c.rms_norm_eps);
  auto* hidden = static_cast<float*>(a.hidden);
  float* logits = buffers_->logits();
  if (step.one_token && R == 1) {
    LOOM_CUDA_CHECK(kc::gemv_rmsnorm(hidden, weights_->final_norm(), eps, H, weights_->lm_head(), vocab, logits,
                                     /*y_f32=*/true, dtype_, s));
  } else {
    LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, step.one_token ? nullptr : a.proj, weights_->final_norm(), T, H, eps,
                                    a.normed, dtype_, s));
    LOOM_CUDA_CHECK(kc::gather_rows(a.normed, step.io.rows, R, H, a.selected, dtype_, s));
    linear_->run(a.selected, R, H, weights_->lm_head(), vocab, logits, dtype_, /*y_f32=*/true);
  }
  mark("final norm + lm head");
  LOOM_CUDA_CHECK(kc::argmax_rows(logits, R, vocab, step.io.greedy, s));
  // The bad-id flag and the greedy tokens, to the same place in host memory.
  LOOM_CUDA_CHECK(cudaMemcpyAsync(step.host.bad_id, step.io.bad_id, (R + 1) * sizeof(std::int32_t),
                                  cudaMemcpyDeviceToHost, s));
  mark("argmax + copies");
}

void CudaModel::read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                              std::span<TokenLogprobs> out) {
  logprobs_.read(buffers_->logits(), static_cast<int>(config_.vocab_size), rows, static_cast<std::size_t>(last_rows_),
                 tokens, out, stream_.get());
}

void CudaModel::read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                             std::span<std::int32_t> tokens) {
  const std::size_t vocab = static_cast<std::size_t>(config_.vocab_size);
  const cudaStream_t s = stream_.get();
  const std::size_t max_rows = buffers_->max_rows();
  kc::SampleRow* sample_rows = buffers_->host_sample_rows();
  kc::VerifyRow* verify_rows = buffers_->host_verify_rows();
  int num_sampled = 0, num_verified = 0;
  for (std::size_t r = 0; r < rows.size() && r < max_rows; ++r) {
    if (rows[r].kind == OutputRow::Kind::logits) {
      LOOM_CUDA_CHECK(cudaMemcpyAsync(logits.data() + r * vocab, buffers_->logits() + r * vocab,
                                      vocab * sizeof(float), cudaMemcpyDeviceToHost, s));
    } else if (rows[r].kind == OutputRow::Kind::sample) {
      const SamplingParams& p = *rows[r].params;
      sample_rows[num_sampled++] = {static_cast<std::int32_t>(r), p.top_k, p.temperature, p.top_p, p.min_p,
                                    rows[r].uniform};
    } else if (rows[r].kind == OutputRow::Kind::verify) {
      const SamplingParams& p = *rows[r].params;
      verify_rows[num_verified++] = {static_cast<std::int32_t>(r), p.top_k,           p.temperature,
                                     p.top_p,                      p.min_p,           rows[r].draft,
                                     rows[r].draws.accept,         rows[r].draws.residual};
    }
  }
  verify_drafts(rows, num_verified);
  std::int32_t* host_drawn = buffers_->host_drawn();
  if (num_sampled > 0) {
    LOOM_CUDA_CHECK(cudaMemcpyAsync(buffers_->device_sample_rows(), sample_rows, num_sampled * sizeof(kc::SampleRow),
                                    cudaMemcpyHostToDevice, s));
    LOOM_CUDA_CHECK(kc::sample_rows(buffers_->logits(), static_cast<int>(vocab), buffers_->device_sample_rows(),
                                    num_sampled, buffers_->device_drawn(), s));
    LOOM_CUDA_CHECK(cudaMemcpyAsync(host_drawn, buffers_->device_drawn(), num_sampled * sizeof(std::int32_t),
                                    cudaMemcpyDeviceToHost, s));
  }
  stream_.synchronize();
  timer_->collect();
  if (const std::int32_t bad = *last_host_io_.bad_id; bad != -1)
    throw RequestError("token id " + std::to_string(bad) + " is outside the model's vocabulary [0, " +
                       std::to_string(vocab) + ")");
  int drawn = 0, verified = 0;
  for (std::size_t r = 0; r < rows.size() && r < static_cast<std::size_t>(last_rows_); ++r) {
    if (rows[r].kind == OutputRow::Kind::greedy) tokens[r] = last_host_io_.greedy[r];
    if (rows[r].kind == OutputRow::Kind::sample) tokens[r] = host_drawn[drawn++];
    if (rows[r].kind == OutputRow::Kind::verify) tokens[r] = buffers_->host_verified()[verified++];
  }
}

// The verify rows gathered in host_verify_rows: their drafters' probabilities go up in launches
// of at most kDraftQRows rows (stream order keeps a launch's rows until it has read them), the
// verdicts come back to host_verified.
void CudaModel::verify_drafts(std::span<const OutputRow> rows, int count) {
  if (count == 0) return;
  const std::size_t vocab = static_cast<std::size_t>(config_.vocab_size);
  const cudaStream_t s = stream_.get();
  const kc::VerifyRow* host_rows = buffers_->host_verify_rows();
  LOOM_CUDA_CHECK(cudaMemcpyAsync(buffers_->device_verify_rows(), host_rows, count * sizeof(kc::VerifyRow),
                                  cudaMemcpyHostToDevice, s));
  constexpr int kChunk = CudaWorkBuffers::kDraftQRows;
  for (int first = 0; first < count; first += kChunk) {
    const int n = std::min(kChunk, count - first);
    for (int i = 0; i < n; ++i) {
      const std::span<const float> q = rows[static_cast<std::size_t>(host_rows[first + i].row)].draft_q;
      if (q.size() != vocab) throw Error("CudaModel::read_outputs: a verify row's draft_q is not a vocabulary's worth");
      LOOM_CUDA_CHECK(cudaMemcpyAsync(buffers_->draft_q() + i * vocab, q.data(), vocab * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
    }
    LOOM_CUDA_CHECK(kc::verify_rows(buffers_->logits(), static_cast<int>(vocab), buffers_->device_verify_rows() + first,
                                    buffers_->draft_q(), n, buffers_->device_verified() + first, s));
  }
  LOOM_CUDA_CHECK(cudaMemcpyAsync(buffers_->host_verified(), buffers_->device_verified(), count * sizeof(std::int32_t),
                                  cudaMemcpyDeviceToHost, s));
}

}  // namespace loom
