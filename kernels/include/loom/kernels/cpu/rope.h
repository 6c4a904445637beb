// Rotary position embeddings (RoPE), fp32 on the CPU, with the scalings Llama-family models use.
//
// Two pairings of a head's dimensions exist in the wild: llama2.c checkpoints rotate consecutive
// pairs (x[2i], x[2i+1]); Hugging Face checkpoints rotate (x[i], x[i + head_dim/2]). Pair i
// turns by position * inv_freq[i].
//
// Accuracy: inverse frequencies and angles are computed in double and only cos/sin are rounded
// to float, so positions in the hundreds of thousands keep full float accuracy.
#pragma once

#include <cstdint>
#include <vector>

namespace loom::kernels::cpu {

enum class RopePairing { interleaved, rotate_half };

struct RopeScaling {
  enum class Type { none, linear, llama3, yarn } type = Type::none;
  double factor = 1.0;                  // linear, llama3, yarn
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  double original_max_position = 8192;  // llama3, yarn
  double beta_fast = 32.0;              // yarn: the ramp between kept and stretched frequencies
  double beta_slow = 1.0;               //   spans these rotations over original_max_position
  bool truncate = true;                 // yarn: ramp bounds rounded outwards to whole dimensions
  double attention_factor = 1.0;        // yarn: multiplies cos and sin (rope_cos_sin's scale)
};

// inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, adjusted by the scaling: linear divides
// every frequency by the factor; llama3 (Llama 3.1's rule) divides low frequencies by the factor,
// keeps high ones, and interpolates smoothly between; yarn (transformers' rule) blends stretched
// and kept frequencies along a linear ramp over the dimensions that turn between beta_fast and
// beta_slow times within original_max_position.
std::vector<double> rope_inverse_frequencies(int head_dim, double theta, const RopeScaling& scaling);

// cos and sin tables [T, head_dim/2] for the given positions, each multiplied by `scale` (YaRN's
// attention factor; 1 otherwise); computed once per step and shared by every layer and head.
void rope_cos_sin(const std::vector<double>& inv_freq, const std::int32_t* positions, int T, float* cos, float* sin,
                  double scale = 1.0);

// Rotates x [T, heads, head_dim] in place with the tables of rope_cos_sin.
void apply_rope(float* x, int T, int heads, int head_dim, const float* cos, const float* sin, RopePairing pairing);

}  // namespace loom::kernels::cpu
