#include "core/model/rank_share.h"

#include <algorithm>
#include <string>
#include <vector>

#include "loom/error.h"

namespace loom {

namespace {

// Rows [begin, end) of a [rows, cols] tensor, or elements [begin, end) of a vector.
io::Tensor rows(const io::Tensor& t, std::int64_t begin, std::int64_t end) {
  if (t.empty()) return t;
  const std::int64_t cols = t.shape().size() > 1 ? t.dim(1) : 1;
  std::vector<float> values(t.data() + begin * cols, t.data() + end * cols);
  std::vector<std::int64_t> shape = t.shape();
  shape[0] = end - begin;
  return io::Tensor::owned(std::move(shape), std::move(values));
}

// Columns [begin, end) of a [rows, cols] tensor.
io::Tensor columns(const io::Tensor& t, std::int64_t begin, std::int64_t end) {
  if (t.empty()) return t;
  const std::int64_t n = t.dim(0), cols = t.dim(1), width = end - begin;
  std::vector<float> values(static_cast<std::size_t>(n * width));
  for (std::int64_t r = 0; r < n; ++r) std::copy_n(t.data() + r * cols + begin, width, values.data() + r * width);
  return io::Tensor::owned({n, width}, std::move(values));
}

void keep_ffn_part(io::Tensor& gate, io::Tensor& up, io::Tensor& down, const sdk::RankLayout& l) {
  if (gate.empty()) return;
  const std::int64_t width = gate.dim(0);
  const std::int64_t begin = width * l.ffn_part / l.ffn_parts, end = width * (l.ffn_part + 1) / l.ffn_parts;
  gate = rows(gate, begin, end);
  up = rows(up, begin, end);
  down = columns(down, begin, end);
}

}  // namespace

RankShare rank_share(const io::ModelConfig& c, const sdk::RankLayout& l) {
  RankShare s;
  s.layout = l;
  const auto heads = static_cast<std::uint32_t>(c.num_attention_heads);
  const auto kv_heads = static_cast<std::uint32_t>(c.num_key_value_heads);
  const auto experts = static_cast<std::uint32_t>(c.num_experts);
  const auto vocab = static_cast<std::uint32_t>(c.vocab_size);
  if (l.end_head > heads || l.first_head >= l.end_head || l.end_kv_head > kv_heads ||
      l.first_kv_head >= l.end_kv_head || l.end_expert > experts || l.first_expert > l.end_expert ||
      l.vocab_end > vocab || l.vocab_begin >= l.vocab_end || l.ffn_parts == 0 || l.ffn_part >= l.ffn_parts)
    throw Error("rank " + std::to_string(l.rank) + "'s share is out of the model's range");
  s.heads = l.end_head - l.first_head;
  s.kv_heads = l.end_kv_head - l.first_kv_head;
  if (s.heads % s.kv_heads != 0 || (heads / kv_heads) % (s.heads / s.kv_heads) != 0)
    throw Error("rank " + std::to_string(l.rank) + " holds " + std::to_string(s.heads) + " query heads over " +
                std::to_string(s.kv_heads) + " KV heads, which is not the model's grouping");
  s.heads_split = s.heads < heads;
  s.ffn_split = l.ffn_parts > 1;
  s.experts_split = l.end_expert - l.first_expert < experts;
  s.vocab_split = l.vocab_end - l.vocab_begin < vocab;
  return s;
}

void keep_share(io::ModelWeights& w, const io::ModelConfig& c, const RankShare& s) {
  const sdk::RankLayout& l = s.layout;
  const std::int64_t d = c.head_dim;
  for (io::LayerWeights& layer : w.layers) {
    if (layer.wq.empty()) continue;  // another pipeline stage's
    if (s.heads_split) {
      layer.wq = rows(layer.wq, l.first_head * d, l.end_head * d);
      layer.bq = rows(layer.bq, l.first_head * d, l.end_head * d);
      layer.wo = columns(layer.wo, l.first_head * d, l.end_head * d);
      if (l.first_head != 0) layer.bo = {};
    }
    if (s.kv_heads < c.num_key_value_heads)
      for (io::Tensor* t : {&layer.wk, &layer.wv, &layer.bk, &layer.bv})
        *t = rows(*t, l.first_kv_head * d, l.end_kv_head * d);
    for (std::size_t e = 0; e < layer.experts.size(); ++e)
      if (e < l.first_expert || e >= l.end_expert) layer.experts[e] = {};
    if (s.experts_split && !s.ffn_split && l.first_expert != 0) {
      layer.shared_expert = {};
      layer.shared_expert_gate = {};
    }
    if (!s.ffn_split) continue;
    keep_ffn_part(layer.w_gate, layer.w_up, layer.w_down, l);
    for (io::ExpertWeights& e : layer.experts) keep_ffn_part(e.w_gate, e.w_up, e.w_down, l);
    keep_ffn_part(layer.shared_expert.w_gate, layer.shared_expert.w_up, layer.shared_expert.w_down, l);
  }
  if (s.vocab_split) {
    const bool tied = w.lm_head.data() == w.token_embedding.data();
    w.token_embedding = rows(w.token_embedding, l.vocab_begin, l.vocab_end);
    w.lm_head = tied ? w.token_embedding : rows(w.lm_head, l.vocab_begin, l.vocab_end);
  }
}

}  // namespace loom
