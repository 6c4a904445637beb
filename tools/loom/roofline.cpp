#include "tools/loom/roofline.h"

#include <algorithm>
#include <cmath>

namespace loom::cli {

namespace {

// Per-token and per-step costs from the model's shape; weights share the KV element size.
struct Costs {
  double element = 0;
  double streamed_bytes = 0;       // read by every step: layers, final norm, lm head
  double embedding_row_bytes = 0;  // read per token of an untied embedding table
  double layer_params = 0, lm_head_params = 0;
  double kv_bytes_per_token = 0;  // K and V of every layer
  double attention_flops_per_pair = 0;
};

Costs costs_of(const Model& model) {
  const sdk::ModelShape m = model.shape();
  Costs c;
  c.element = m.kv_bytes_per_element;
  c.lm_head_params = double(m.vocab_size) * m.hidden_size;
  c.streamed_bytes = static_cast<double>(model.weight_bytes());  // the untied embedding table not counted
  c.embedding_row_bytes = model.config().tie_word_embeddings ? 0.0 : double(m.hidden_size) * c.element;
  c.layer_params = c.streamed_bytes / c.element - c.lm_head_params;
  c.kv_bytes_per_token = 2.0 * m.num_layers * m.num_kv_heads * m.head_dim * c.element;
  c.attention_flops_per_pair = 4.0 * m.num_heads * m.head_dim * m.num_layers;
  return c;
}

double seconds_on(const Roofline& r, const runtime::DeviceLimits* limits) {
  if (!limits) return 0;
  return std::max(r.bytes / (limits->copy_gb_s * 1e9), r.flops / (limits->gemm_tflops * 1e12));
}

}  // namespace

Roofline steps_roofline(const Model& model, const std::vector<StepRecord>& steps, const runtime::DeviceLimits* limits) {
  const Costs c = costs_of(model);
  Roofline total;
  for (const StepRecord& s : steps) {
    Roofline step;
    step.bytes = c.streamed_bytes + s.tokens * c.embedding_row_bytes + s.kv_tokens * c.kv_bytes_per_token;
    step.flops = 2.0 * c.layer_params * s.tokens + 2.0 * c.lm_head_params * s.rows +
                 c.attention_flops_per_pair * double(s.attention_pairs);
    total.bytes += step.bytes;
    total.flops += step.flops;
    total.seconds += seconds_on(step, limits);
  }
  return total;
}

Roofline workload_roofline(const Model& model, const std::vector<RequestLengths>& requests,
                           const PackingLimits& packing, const runtime::DeviceLimits* limits) {
  const Costs c = costs_of(model);
  double tokens = 0, rows = 0, pairs = 0, kv_read = 0, resident = 0;
  std::uint64_t longest_output = 0;
  for (const RequestLengths& r : requests) {
    if (r.output == 0) continue;
    const double p = double(r.prompt), o = double(r.output);
    tokens += p + (o - 1);  // the prompt once; a decode for every output token but the first
    rows += o;
    // The prefill's causal pairs and one read of its K/V; decode t (1 .. o-1) sees p + t keys.
    const double decode_keys = (o - 1) * p + (o - 1) * o / 2;
    pairs += p * (p + 1) / 2 + decode_keys;
    kv_read += p + decode_keys;
    resident += p + decode_keys;  // token-steps of KV held while it decodes
    longest_output = std::max(longest_output, r.output);
  }
  // The fewest steps: the longest output, and what each budget and the pool's size allow.
  double steps = double(longest_output);
  if (packing.max_num_batched_tokens)
    steps = std::max(steps, std::ceil(tokens / double(packing.max_num_batched_tokens)));
  if (packing.max_num_seqs) steps = std::max(steps, std::ceil(rows / double(packing.max_num_seqs)));
  if (packing.kv_tokens) steps = std::max(steps, std::ceil(resident / double(packing.kv_tokens)));
  Roofline r;
  r.bytes = steps * c.streamed_bytes + tokens * c.embedding_row_bytes + kv_read * c.kv_bytes_per_token;
  r.flops = 2.0 * c.layer_params * tokens + 2.0 * c.lm_head_params * rows + c.attention_flops_per_pair * pairs;
  r.seconds = seconds_on(r, limits);
  return r;
}

}  // namespace loom::cli
