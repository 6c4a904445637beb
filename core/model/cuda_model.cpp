#include "core/model/cuda_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/model/cuda_kv_cache.h"
#include "loom/cuda_check.h"
#include "core/model/config_adapters.h"
#include "loom/error.h"
#include "loom/kernels/cpu/rope.h"
#include "loom/kernels/cuda/elementwise.h"
#include "loom/kernels/cuda/gemv.h"
#include "loom/kernels/cuda/rope.h"
#include "loom/kernels/cuda/sampling.h"

namespace loom {

namespace kc = kernels::cuda;

namespace {

constexpr std::size_t kAlign = 256;
constexpr std::size_t kUploadChunk = 16u << 20;  // floats per staging round (64 MiB)

std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Copies fp32 host tensors into 16-bit device memory through pinned and device fp32 staging.
class Uploader {
 public:
  Uploader(kc::DType dtype, cudaStream_t stream)
      : dtype_(dtype),
        stream_(stream),
        host_(kUploadChunk * sizeof(float), "weight upload staging"),
        device_(kUploadChunk * sizeof(float), "weight upload staging") {}

  // Writes the tensor's elements to dst (16-bit), in order.
  void put(const io::Tensor& t, void* dst) {
    auto* out = static_cast<unsigned char*>(dst);
    const float* src = t.data();
    for (std::size_t done = 0; done < t.numel();) {
      const std::size_t n = std::min(kUploadChunk, t.numel() - done);
      LOOM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the staging buffers are free again
      std::memcpy(host_.as<float>(), src + done, n * sizeof(float));
      LOOM_CUDA_CHECK(cudaMemcpyAsync(device_.as<float>(), host_.as<float>(), n * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
      LOOM_CUDA_CHECK(kc::convert_from_f32(device_.as<float>(), out + done * kc::kElementSize, n, dtype_, stream_));
      done += n;
    }
  }

 private:
  kc::DType dtype_;
  cudaStream_t stream_;
  runtime::PinnedBuffer host_;
  runtime::DeviceBuffer device_;
};

std::size_t bytes_of(const io::Tensor& t) { return t.empty() ? 0 : aligned(t.numel() * kc::kElementSize); }

}  // namespace

bool cuda_backend_compiled() { return true; }

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
  upload_weights(model.weights);
  // One-token steps fuse the norms, residual adds and SiLU into the GEMVs when every layer's
  // shape suits the GEMV and no o-projection bias sits between the GEMV and the residual add.
  fused_decode_ = linear_->own_gemv() && kc::gemv_supports(1, static_cast<int>(c.hidden_size)) &&
                  kc::gemv_supports(1, static_cast<int>(c.intermediate_size)) &&
                  kc::gemv_supports(1, static_cast<int>(c.num_attention_heads * c.head_dim));
  for (const CudaLayerWeights& w : layers_) fused_decode_ = fused_decode_ && w.bo == nullptr;
  // The rotary embedding joins the QKV GEMV too, unless a QK-norm (which needs whole heads) sits
  // between them.
  fused_rope_ = fused_decode_;
  for (const CudaLayerWeights& w : layers_) fused_rope_ = fused_rope_ && w.q_norm == nullptr && w.k_norm == nullptr;

  // RoPE table from the CPU's double-precision angles, so both backends rotate alike.
  const int d = static_cast<int>(c.head_dim), half = d / 2;
  rope_positions_ = static_cast<int>(std::max<std::uint32_t>(1, options_.max_model_len));
  const int positions = rope_positions_;
  std::vector<std::int32_t> all(positions);
  for (int p = 0; p < positions; ++p) all[p] = p;
  const kernels::cpu::RopeScaling scaling = rope_scaling_of(c.rope_scaling);
  const auto inv_freq = kernels::cpu::rope_inverse_frequencies(d, c.rope_theta, scaling);
  std::vector<float> cos(static_cast<std::size_t>(positions) * half), sin(cos.size());
  kernels::cpu::rope_cos_sin(inv_freq, all.data(), positions, cos.data(), sin.data(), scaling.attention_factor);
  std::vector<float> table(static_cast<std::size_t>(positions) * d);
  for (int p = 0; p < positions; ++p) {
    std::copy_n(cos.data() + static_cast<std::size_t>(p) * half, half, table.data() + static_cast<std::size_t>(p) * d);
    std::copy_n(sin.data() + static_cast<std::size_t>(p) * half, half, table.data() + static_cast<std::size_t>(p) * d + half);
  }
  cos_sin_ = runtime::DeviceBuffer(table.size() * sizeof(float), "the RoPE table");
  LOOM_CUDA_CHECK(cudaMemcpy(cos_sin_.data(), table.data(), table.size() * sizeof(float), cudaMemcpyHostToDevice));

  // Work buffers for the largest step; decode graphs pad up to max_num_seqs tokens.
  max_tokens_ = std::max(options_.max_num_batched_tokens, options_.max_num_seqs);
  max_rows_ = std::min(max_tokens_, std::max<std::uint32_t>(options_.max_num_seqs, 1));
  const std::size_t T = max_tokens_, H = c.hidden_size, heads = c.num_attention_heads, kv = c.num_key_value_heads;
  const std::size_t inter = c.intermediate_size;
  // Bytes of each work buffer; the residual stream (hidden) is fp32, the rest 16-bit.
  const std::size_t e = kc::kElementSize;
  const std::size_t sizes[] = {T * H * sizeof(float), T * H * e, T * (heads + 2 * kv) * c.head_dim * e,
                               T * heads * c.head_dim * e, T * kv * c.head_dim * e, T * kv * c.head_dim * e,
                               T * heads * c.head_dim * e, T * H * e, T * 2 * inter * e, T * inter * e,
                               max_rows_ * H * e};
  std::size_t total = 0;
  for (std::size_t n : sizes) total += aligned(n);
  activations_ = runtime::DeviceBuffer(total, "activations of " + std::to_string(T) + " tokens");
  void** slots[] = {&hidden_, &normed_, &qkv_, &q_, &k_, &v_, &attn_, &proj_, &gate_up_, &act_, &selected_};
  auto* at = activations_.as<unsigned char>();
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    *slots[i] = at;
    at += aligned(sizes[i]);
  }
  const std::size_t io_bytes = (2 * T + 2 * max_rows_ + 1) * sizeof(std::int32_t);
  step_io_ = runtime::DeviceBuffer(io_bytes, "step inputs and greedy tokens");
  host_step_io_ = runtime::PinnedBuffer(io_bytes, "step inputs and greedy tokens");
  logits_ = runtime::DeviceBuffer(static_cast<std::size_t>(max_rows_) * c.vocab_size * sizeof(float), "logits");
  LOOM_CUDA_CHECK(cudaEventCreate(&step_start_));
  LOOM_CUDA_CHECK(cudaEventCreate(&step_end_));
  if (const char* env = std::getenv("LOOM_PROFILE"); env && std::string(env) == "1") {
    profile_ = true;
    options_.cuda_graphs = false;  // phases are timed between kernels, which a graph hides
  }
  // Sampled rows: their parameters, then the tokens drawn.
  const std::size_t sampling_bytes = max_rows_ * (sizeof(kc::SampleRow) + sizeof(std::int32_t));
  sampling_ = runtime::DeviceBuffer(sampling_bytes, "sampling rows");
  host_sampling_ = runtime::PinnedBuffer(sampling_bytes, "sampling rows");
  stream_.synchronize();
}

CudaModel::~CudaModel() {
  for (auto& [size, exec] : graphs_) cudaGraphExecDestroy(exec);
  for (cudaEvent_t e : phase_events_) cudaEventDestroy(e);
  if (step_start_) cudaEventDestroy(step_start_);
  if (step_end_) cudaEventDestroy(step_end_);
}

void CudaModel::mark(const char* phase) {
  if (!profile_) return;
  if (phase_count_ == phase_events_.size()) {
    cudaEvent_t e = nullptr;
    LOOM_CUDA_CHECK(cudaEventCreate(&e));
    phase_events_.push_back(e);
    phase_names_.push_back(phase);
  }
  phase_names_[phase_count_] = phase;
  LOOM_CUDA_CHECK(cudaEventRecord(phase_events_[phase_count_++], stream_.get()));
}

void CudaModel::collect_timing() {
  if (!timing_pending_) return;
  timing_pending_ = false;
  float ms = 0;
  LOOM_CUDA_CHECK(cudaEventElapsedTime(&ms, step_start_, step_end_));
  device_ms_ += ms;
  if (!profile_ || phase_count_ == 0) return;
  float previous = 0;
  for (std::size_t i = 0; i < phase_count_; ++i) {
    float at = 0;
    LOOM_CUDA_CHECK(cudaEventElapsedTime(&at, step_start_, phase_events_[i]));
    phase_ms_[phase_names_[i]] += at - previous;  // the phase named at its end
    previous = at;
  }
  ++profiled_steps_;
}

void CudaModel::reset_timing() {
  device_ms_ = 0;
  phase_ms_.clear();
  profiled_steps_ = 0;
}

std::string CudaModel::profile_report() const {
  if (phase_ms_.empty()) return "";
  double total = 0;
  for (const auto& [name, ms] : phase_ms_) total += ms;
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [name, ms] : phase_ms_) sorted.emplace_back(ms, name);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out = "GPU time by phase over " + std::to_string(profiled_steps_) + " steps (" +
                    std::to_string(total) + " ms):\n";
  for (const auto& [ms, name] : sorted) {
    char line[128];
    std::snprintf(line, sizeof line, "  %-22s %9.2f ms  %5.1f%%\n", name.c_str(), ms, 100.0 * ms / total);
    out += line;
  }
  return out;
}

void CudaModel::upload_weights(const io::ModelWeights& w) {
  const bool tied = w.lm_head.data() == w.token_embedding.data();
  std::size_t total = bytes_of(w.token_embedding) + bytes_of(w.final_norm) + (tied ? 0 : bytes_of(w.lm_head));
  for (const auto& l : w.layers) {
    for (const io::Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm,
                                &l.k_norm, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      total += bytes_of(*t);
  }
  weight_storage_ = runtime::DeviceBuffer(total, "the model's weights");
  Uploader up(dtype_, stream_.get());
  auto* next = weight_storage_.as<unsigned char>();
  // Places tensors back to back (one region per fused weight) and returns the region's start.
  auto place = [&](std::initializer_list<const io::Tensor*> parts) -> const void* {
    if ((*parts.begin())->empty()) return nullptr;
    unsigned char* start = next;
    std::size_t elements = 0;
    for (const io::Tensor* t : parts) {
      up.put(*t, start + elements * kc::kElementSize);
      elements += t->numel();
    }
    next += aligned(elements * kc::kElementSize);
    return start;
  };
  embedding_ = place({&w.token_embedding});
  final_norm_ = place({&w.final_norm});
  lm_head_ = tied ? embedding_ : place({&w.lm_head});
  std::uint64_t elements = io::num_parameters(w);
  if (!tied) elements -= w.token_embedding.numel();
  weight_bytes_ = elements * kc::kElementSize;
  for (const auto& l : w.layers) {
    CudaLayerWeights d;
    d.attn_norm = place({&l.attn_norm});
    d.w_qkv = place({&l.wq, &l.wk, &l.wv});
    d.b_qkv = place({&l.bq, &l.bk, &l.bv});
    d.wo = place({&l.wo});
    d.bo = place({&l.bo});
    d.q_norm = place({&l.q_norm});
    d.k_norm = place({&l.k_norm});
    d.ffn_norm = place({&l.ffn_norm});
    d.w_gate_up = place({&l.w_gate, &l.w_up});
    d.w_down = place({&l.w_down});
    layers_.push_back(d);
  }
  stream_.synchronize();
}

sdk::ModelShape CudaModel::shape() const { return shape_of(config_, static_cast<std::uint32_t>(kc::kElementSize)); }

std::string CudaModel::describe() const {
  return "cuda:" + std::to_string(options_.device_index) + " (" + runtime::device_name() + "), " +
         sdk::dtype_name(dtype_) + ", weights " + runtime::format_gib(weight_storage_.bytes()) + ", work buffers " +
         runtime::format_gib(activations_.bytes() + logits_.bytes()) + ", CUDA graphs " +
         (options_.cuda_graphs ? "on" : "off");
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

CudaModel::StepIo CudaModel::step_io(void* base, int T, int R) {
  auto* at = static_cast<std::int32_t*>(base);
  return {at, at + T, at + 2 * T, at + 2 * T + R, at + 2 * T + R + 1};
}

int CudaModel::graph_batch_size(int T) const {
  if (!options_.cuda_graphs || T <= 0) return 0;
  int size = T <= 8 ? 1 : 16;
  if (T <= 8) {
    while (size < T) size *= 2;
  } else {
    size = (T + 15) / 16 * 16;
  }
  return size <= static_cast<int>(max_rows_) ? size : 0;
}

void CudaModel::forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  const int T = static_cast<int>(batch.tokens.size());
  const int R = static_cast<int>(batch.logit_rows.size());
  if (T > static_cast<int>(max_tokens_) || R > static_cast<int>(max_rows_))
    throw Error("CudaModel::forward: a step of " + std::to_string(T) + " tokens and " + std::to_string(R) +
                " sampling rows exceeds the buffers sized for " + std::to_string(max_tokens_) + " and " +
                std::to_string(max_rows_));
  bool decode = R == T;
  for (const sdk::AttentionSeq& s : batch.seqs) decode = decode && s.q_len == 1;
  const int padded = decode ? graph_batch_size(T) : 0;
  const int run_T = padded > 0 ? padded : T;
  const int run_R = padded > 0 ? padded : R;

  // Inputs: tokens, positions and logit rows (padding rows are token 0 at position 0 sampling
  // themselves), then the bad-id flag; enqueue_forward copies them in (inside a step's graph).
  const StepIo in = step_io(host_step_io_.as<void>(), run_T, run_R);
  std::fill(std::copy(batch.tokens.begin(), batch.tokens.end(), in.tokens), in.positions, 0);
  std::fill(std::copy(batch.positions.begin(), batch.positions.end(), in.positions), in.rows, 0);
  std::copy(batch.logit_rows.begin(), batch.logit_rows.end(), in.rows);
  for (int r = R; r < run_R; ++r) in.rows[r] = r;
  *in.bad_id = -1;
  last_rows_ = R;
  last_host_io_ = in;

  const auto& c = config_;
  const sdk::AttentionBatch layout = attention_batch_of(c, batch.seqs, static_cast<std::uint32_t>(T));
  attention.prepare(layout, cache, stream_.get());
  phase_count_ = 0;
  LOOM_CUDA_CHECK(cudaEventRecord(step_start_, stream_.get()));
  timing_pending_ = true;

  if (padded == 0) {
    enqueue_forward(run_T, run_R, attention, cache);
    LOOM_CUDA_CHECK(cudaEventRecord(step_end_, stream_.get()));
    return;
  }
  auto it = graphs_.find(padded);
  if (it == graphs_.end()) {
    cudaGraph_t graph = nullptr;
    LOOM_CUDA_CHECK(cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_forward(run_T, run_R, attention, cache);
    } catch (...) {
      cudaStreamEndCapture(stream_.get(), &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    LOOM_CUDA_CHECK(cudaStreamEndCapture(stream_.get(), &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    LOOM_CUDA_CHECK(status);
    it = graphs_.emplace(padded, exec).first;
  }
  LOOM_CUDA_CHECK(cudaGraphLaunch(it->second, stream_.get()));
  LOOM_CUDA_CHECK(cudaEventRecord(step_end_, stream_.get()));
}

void CudaModel::enqueue_forward(int T, int R, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) {
  const auto& c = config_;
  cudaStream_t s = stream_.get();
  const int H = static_cast<int>(c.hidden_size), d = static_cast<int>(c.head_dim);
  const int heads = static_cast<int>(c.num_attention_heads), kv = static_cast<int>(c.num_key_value_heads);
  const int inter = static_cast<int>(c.intermediate_size), vocab = static_cast<int>(c.vocab_size);
  const int qkv_width = (heads + 2 * kv) * d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const StepIo io = step_io(step_io_.data(), T, R), host = step_io(host_step_io_.as<void>(), T, R);
  const std::int32_t* tokens = io.tokens;
  const std::int32_t* positions = io.positions;
  // The step's inputs in, its greedy tokens out (below): one small copy each way.
  LOOM_CUDA_CHECK(cudaMemcpyAsync(io.tokens, host.tokens, (host.greedy - host.tokens) * sizeof(std::int32_t),
                                  cudaMemcpyHostToDevice, s));

  auto view = [&](void* data, std::int64_t h) {
    sdk::TensorView t;
    t.data = data;
    t.dtype = kv_dtype();
    t.device = device();
    t.rank = 3;
    t.shape = {T, h, d, 0};
    return t;
  };

  float* hidden = static_cast<float*>(hidden_);
  LOOM_CUDA_CHECK(kc::embedding(embedding_, vocab, H, tokens, T, hidden, io.bad_id, dtype_, s));
  mark("embedding");
  // A one-token step runs the fused GEMVs (gemv.h): the residual adds happen in the o and down
  // projections' epilogues, the norms in the qkv, gate/up and lm-head projections' prologues.
  const bool fused = T == 1 && fused_decode_;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const CudaLayerWeights& w = layers_[l];
    if (fused && fused_rope_) {  // q, k and v heads rotated in place in qkv_ (one token)
      kc::GemvRope rope;
      rope.position = positions;
      rope.cos_sin = cos_sin_.as<float>();
      rope.table_positions = rope_positions_;
      rope.head_dim = d;
      rope.interleaved = c.rope_style == io::RopeStyle::kInterleaved;
      rope.rotary_rows = (heads + kv) * d;
      LOOM_CUDA_CHECK(kc::gemv_rmsnorm_rope(hidden, w.attn_norm, eps, H, w.w_qkv, qkv_width, w.b_qkv, rope, qkv_,
                                            dtype_, s));
      mark("qkv projection + rope");
      auto* q = static_cast<unsigned char*>(qkv_);
      const std::size_t head_bytes = static_cast<std::size_t>(d) * kc::kElementSize;
      attention.forward(static_cast<std::uint32_t>(l), view(q, heads), view(q + heads * head_bytes, kv),
                        view(q + (heads + kv) * head_bytes, kv), cache, view(attn_, heads), s);
    } else {
      if (fused) {
        LOOM_CUDA_CHECK(kc::gemv_rmsnorm(hidden, w.attn_norm, eps, H, w.w_qkv, qkv_width, qkv_, false, dtype_, s));
      } else {
        // The previous layer's FFN output joins the residual stream here (none before layer 0).
        LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, l == 0 ? nullptr : proj_, w.attn_norm, T, H, eps, normed_, dtype_, s));
        mark("add + rmsnorm");
        linear_->run(normed_, T, H, w.w_qkv, qkv_width, qkv_, dtype_);
      }
      if (w.b_qkv) LOOM_CUDA_CHECK(kc::add_bias(qkv_, w.b_qkv, T, qkv_width, dtype_, s));
      mark("qkv projection");
      kc::RopeSplitArgs rope;
      rope.qkv = qkv_;
      rope.positions = positions;
      rope.cos_sin = cos_sin_.as<float>();
      rope.table_positions = rope_positions_;
      rope.num_tokens = T;
      rope.num_heads = heads;
      rope.num_kv_heads = kv;
      rope.head_dim = d;
      rope.interleaved = c.rope_style == io::RopeStyle::kInterleaved;
      rope.q_norm = w.q_norm;
      rope.k_norm = w.k_norm;
      rope.norm_eps = eps;
      rope.q = q_;
      rope.k = k_;
      rope.v = v_;
      LOOM_CUDA_CHECK(kc::rope_split_qkv(rope, dtype_, s));
      mark("rope + split");
      attention.forward(static_cast<std::uint32_t>(l), view(q_, heads), view(k_, kv), view(v_, kv), cache,
                        view(attn_, heads), s);
    }
    mark("attention (plugin)");
    if (fused) {
      LOOM_CUDA_CHECK(kc::gemv_add_residual(attn_, heads * d, w.wo, H, hidden, dtype_, s));
      mark("o projection");
      LOOM_CUDA_CHECK(kc::gemv_rmsnorm_silu(hidden, w.ffn_norm, eps, H, w.w_gate_up, inter, act_, dtype_, s));
      mark("gate/up projection");
      LOOM_CUDA_CHECK(kc::gemv_add_residual(act_, inter, w.w_down, H, hidden, dtype_, s));
      mark("down projection");
      continue;
    }
    linear_->run(attn_, T, heads * d, w.wo, H, proj_, dtype_);
    if (w.bo) LOOM_CUDA_CHECK(kc::add_bias(proj_, w.bo, T, H, dtype_, s));
    mark("o projection");
    LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, proj_, w.ffn_norm, T, H, eps, normed_, dtype_, s));
    mark("add + rmsnorm");
    linear_->run(normed_, T, H, w.w_gate_up, 2 * inter, gate_up_, dtype_);
    mark("gate/up projection");
    LOOM_CUDA_CHECK(kc::silu_and_mul(gate_up_, T, inter, act_, dtype_, s));
    mark("silu * up");
    linear_->run(act_, T, inter, w.w_down, H, proj_, dtype_);
    mark("down projection");
  }
  // Only the sampling rows go through the final norm and the lm head (the fused path has added
  // the last FFN output already, and for its one row the norm is the lm-head GEMV's prologue).
  if (fused && R == 1) {
    LOOM_CUDA_CHECK(kc::gemv_rmsnorm(hidden, final_norm_, eps, H, lm_head_, vocab, logits_.data(), /*y_f32=*/true,
                                     dtype_, s));
  } else {
    LOOM_CUDA_CHECK(kc::add_rmsnorm(hidden, fused ? nullptr : proj_, final_norm_, T, H, eps, normed_, dtype_, s));
    LOOM_CUDA_CHECK(kc::gather_rows(normed_, io.rows, R, H, selected_, dtype_, s));
    linear_->run(selected_, R, H, lm_head_, vocab, logits_.data(), dtype_, /*y_f32=*/true);
  }
  mark("final norm + lm head");
  LOOM_CUDA_CHECK(kc::argmax_rows(logits_.as<float>(), R, vocab, io.greedy, s));
  // The bad-id flag and the greedy tokens, to the same place in host memory.
  LOOM_CUDA_CHECK(cudaMemcpyAsync(host.bad_id, io.bad_id, (R + 1) * sizeof(std::int32_t), cudaMemcpyDeviceToHost, s));
  mark("argmax + copies");
}

void CudaModel::read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                             std::span<std::int32_t> tokens) {
  const std::size_t vocab = static_cast<std::size_t>(config_.vocab_size);
  const cudaStream_t s = stream_.get();
  auto* sample_rows = host_sampling_.as<kc::SampleRow>();
  int num_sampled = 0;
  for (std::size_t r = 0; r < rows.size() && r < max_rows_; ++r) {
    if (rows[r].kind == OutputRow::Kind::logits) {
      LOOM_CUDA_CHECK(cudaMemcpyAsync(logits.data() + r * vocab, logits_.as<float>() + r * vocab,
                                      vocab * sizeof(float), cudaMemcpyDeviceToHost, s));
    } else if (rows[r].kind == OutputRow::Kind::sample) {
      const SamplingParams& p = *rows[r].params;
      sample_rows[num_sampled++] = {static_cast<std::int32_t>(r), p.top_k, p.temperature, p.top_p, p.min_p,
                                    rows[r].uniform};
    }
  }
  auto* host_drawn = reinterpret_cast<std::int32_t*>(sample_rows + max_rows_);
  if (num_sampled > 0) {
    auto* device_rows = sampling_.as<kc::SampleRow>();
    auto* device_drawn = reinterpret_cast<std::int32_t*>(device_rows + max_rows_);
    LOOM_CUDA_CHECK(cudaMemcpyAsync(device_rows, sample_rows, num_sampled * sizeof(kc::SampleRow),
                                    cudaMemcpyHostToDevice, s));
    LOOM_CUDA_CHECK(kc::sample_rows(logits_.as<float>(), static_cast<int>(vocab), device_rows, num_sampled,
                                    device_drawn, s));
    LOOM_CUDA_CHECK(cudaMemcpyAsync(host_drawn, device_drawn, num_sampled * sizeof(std::int32_t),
                                    cudaMemcpyDeviceToHost, s));
  }
  stream_.synchronize();
  collect_timing();
  if (const std::int32_t bad = *last_host_io_.bad_id; bad != -1)
    throw RequestError("token id " + std::to_string(bad) + " is outside the model's vocabulary [0, " +
                       std::to_string(vocab) + ")");
  int drawn = 0;
  for (std::size_t r = 0; r < rows.size() && r < static_cast<std::size_t>(last_rows_); ++r) {
    if (rows[r].kind == OutputRow::Kind::greedy) tokens[r] = last_host_io_.greedy[r];
    if (rows[r].kind == OutputRow::Kind::sample) tokens[r] = host_drawn[drawn++];
  }
}

}  // namespace loom
