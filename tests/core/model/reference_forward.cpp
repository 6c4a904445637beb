#include "reference_forward.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace loom::testing {

namespace {

using Vec = std::vector<double>;
using io::ModelConfig;
using io::Tensor;

// y = W x (+ b), W [out, in].
Vec linear(const Tensor& w, const Vec& x, const Tensor* bias = nullptr) {
  const std::int64_t out = w.dim(0), in = w.dim(1);
  Vec y(out);
  for (std::int64_t o = 0; o < out; ++o) {
    double acc = 0;
    for (std::int64_t i = 0; i < in; ++i) acc += double(w.data()[o * in + i]) * x[i];
    y[o] = acc + (bias && !bias->empty() ? double(bias->data()[o]) : 0.0);
  }
  return y;
}

Vec rmsnorm(const Vec& x, const float* w, double eps, std::size_t begin = 0, std::size_t n = 0) {
  if (n == 0) n = x.size();
  double ss = 0;
  for (std::size_t i = 0; i < n; ++i) ss += x[begin + i] * x[begin + i];
  double inv = 1.0 / std::sqrt(ss / double(n) + eps);
  Vec y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = x[begin + i] * inv * w[i];
  return y;
}

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// Inverse frequencies with the config's scaling (Llama 3.1's rule, or linear).
Vec inverse_frequencies(const ModelConfig& c) {
  const std::int64_t d = c.head_dim;
  Vec inv(d / 2);
  for (std::int64_t i = 0; i < d / 2; ++i) inv[i] = std::pow(c.rope_theta, -2.0 * double(i) / double(d));
  const auto& s = c.rope_scaling;
  if (s.type == io::RopeScalingType::kLinear) {
    for (double& f : inv) f /= s.factor;
  } else if (s.type == io::RopeScalingType::kLlama3) {
    const double old_len = double(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else {
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  return inv;
}

// Rotates one head in place at `position`.
void rope(double* x, const ModelConfig& c, const Vec& inv, std::int64_t position) {
  const std::int64_t half = c.head_dim / 2;
  for (std::int64_t i = 0; i < half; ++i) {
    const double angle = double(position) * inv[i];
    const double cs = std::cos(angle), sn = std::sin(angle);
    const std::int64_t a = c.rope_style == io::RopeStyle::kInterleaved ? 2 * i : i;
    const std::int64_t b = c.rope_style == io::RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
    const double x1 = x[a], x2 = x[b];
    x[a] = x1 * cs - x2 * sn;
    x[b] = x2 * cs + x1 * sn;
  }
}

Vec dense_ffn(const Tensor& gate, const Tensor& up, const Tensor& down, const Vec& x) {
  Vec g = linear(gate, x), u = linear(up, x);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
  return linear(down, g);
}

Vec moe_ffn(const ModelConfig& c, const io::LayerWeights& layer, const Vec& x) {
  Vec logits = linear(layer.router, x);
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  Vec probs(logits.size());
  double sum = 0;
  for (std::size_t e = 0; e < logits.size(); ++e) sum += probs[e] = std::exp(logits[e] - max_logit);
  for (double& p : probs) p /= sum;
  std::vector<int> order(probs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  order.resize(c.num_experts_per_tok);
  double top_sum = 0;
  for (int e : order) top_sum += probs[e];
  Vec y(x.size(), 0.0);
  for (int e : order) {
    const double weight = c.norm_topk_prob ? probs[e] / top_sum : probs[e];
    const auto& expert = layer.experts[e];
    Vec out = dense_ffn(expert.w_gate, expert.w_up, expert.w_down, x);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += weight * out[i];
  }
  if (!layer.shared_expert.w_gate.empty()) {
    Vec shared = dense_ffn(layer.shared_expert.w_gate, layer.shared_expert.w_up, layer.shared_expert.w_down, x);
    const double gate = 1.0 / (1.0 + std::exp(-linear(layer.shared_expert_gate, x)[0]));
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += gate * shared[i];
  }
  return y;
}

}  // namespace

std::vector<std::vector<double>> reference_logits(const io::LoadedModel& model, std::span<const std::int32_t> tokens) {
  const ModelConfig& c = model.config;
  const auto& w = model.weights;
  const std::int64_t hidden = c.hidden_size, d = c.head_dim, heads = c.num_attention_heads,
                     kv_heads = c.num_key_value_heads, group = heads / kv_heads;
  const std::size_t T = tokens.size();
  const Vec inv = inverse_frequencies(c);

  std::vector<Vec> h(T, Vec(hidden));
  for (std::size_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < hidden; ++i) h[t][i] = w.token_embedding.data()[tokens[t] * hidden + i];

  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto& layer = w.layers[l];
    std::vector<Vec> q(T), k(T), v(T);
    for (std::size_t t = 0; t < T; ++t) {
      Vec x = rmsnorm(h[t], layer.attn_norm.data(), c.rms_norm_eps);
      q[t] = linear(layer.wq, x, &layer.bq);
      k[t] = linear(layer.wk, x, &layer.bk);
      v[t] = linear(layer.wv, x, &layer.bv);
      if (c.qk_norm) {
        for (std::int64_t hd = 0; hd < heads; ++hd) {
          Vec n = rmsnorm(q[t], layer.q_norm.data(), c.rms_norm_eps, hd * d, d);
          std::copy(n.begin(), n.end(), q[t].begin() + hd * d);
        }
        for (std::int64_t hd = 0; hd < kv_heads; ++hd) {
          Vec n = rmsnorm(k[t], layer.k_norm.data(), c.rms_norm_eps, hd * d, d);
          std::copy(n.begin(), n.end(), k[t].begin() + hd * d);
        }
      }
      for (std::int64_t hd = 0; hd < heads; ++hd) rope(&q[t][hd * d], c, inv, t);
      for (std::int64_t hd = 0; hd < kv_heads; ++hd) rope(&k[t][hd * d], c, inv, t);
    }
    for (std::size_t t = 0; t < T; ++t) {
      Vec attn(heads * d, 0.0);
      for (std::int64_t hd = 0; hd < heads; ++hd) {
        const std::int64_t kvh = hd / group;
        Vec scores(t + 1);
        for (std::size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (std::int64_t i = 0; i < d; ++i) dot += q[t][hd * d + i] * k[j][kvh * d + i];
          scores[j] = dot / std::sqrt(double(d));
        }
        const double m = *std::max_element(scores.begin(), scores.end());
        double sum = 0;
        for (double& s : scores) sum += s = std::exp(s - m);
        for (std::size_t j = 0; j <= t; ++j)
          for (std::int64_t i = 0; i < d; ++i) attn[hd * d + i] += scores[j] / sum * v[j][kvh * d + i];
      }
      Vec o = linear(layer.wo, attn, &layer.bo);
      for (std::int64_t i = 0; i < hidden; ++i) h[t][i] += o[i];
      Vec x = rmsnorm(h[t], layer.ffn_norm.data(), c.rms_norm_eps);
      Vec f = c.layer_is_moe(l) ? moe_ffn(c, layer, x) : dense_ffn(layer.w_gate, layer.w_up, layer.w_down, x);
      for (std::int64_t i = 0; i < hidden; ++i) h[t][i] += f[i];
    }
  }
  std::vector<Vec> logits(T);
  for (std::size_t t = 0; t < T; ++t) logits[t] = linear(w.lm_head, rmsnorm(h[t], w.final_norm.data(), c.rms_norm_eps));
  return logits;
}

std::vector<std::int32_t> reference_greedy(const io::LoadedModel& model, std::vector<std::int32_t> tokens, int steps) {
  std::vector<std::int32_t> out;
  for (int s = 0; s < steps; ++s) {
    const Vec last = reference_logits(model, tokens).back();  // a copy: the temporary dies here
    const auto best = static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    out.push_back(best);
    tokens.push_back(best);
  }
  return out;
}

}  // namespace loom::testing
