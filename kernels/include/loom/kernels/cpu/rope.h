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
  enum class Type { none, linear, llama3 } type = Type::none;
  double factor = 1.0;             // linear and llama3
  double low_freq_factor = 1.0;    // llama3
  double high_freq_factor = 4.0;   // llama3
  double original_max_position = 8192;  // llama3
};

// inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, adjusted by the scaling: linear divides
// every frequency by the factor; llama3 (Llama 3.1's rule) divides low frequencies by the factor,
// keeps high ones, and interpolates smoothly between.
std::vector<double> rope_inverse_frequencies(int head_dim, double theta, const RopeScaling& scaling);

// cos and sin tables [T, head_dim/2] for the given positions; computed once per step and shared
// by every layer and head.
void rope_cos_sin(const std::vector<double>& inv_freq, const std::int32_t* positions, int T, float* cos, float* sin);

// Rotates x [T, heads, head_dim] in place with the tables of rope_cos_sin.
void apply_rope(float* x, int T, int heads, int head_dim, const float* cos, const float* sin, RopePairing pairing);

}  // namespace loom::kernels::cpu
