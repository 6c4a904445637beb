// Deterministic random weights for generated models: the same (seed, tensor name, index) gives
// the same float on every platform and standard library.
//
// SplitMix64 is counter-based (value i is mix(base + (i + 1) * gamma)), so any element can be
// computed directly and a tensor's values do not depend on how the model is sharded or ordered.
// The normal deviate is Irwin-Hall: the sum of four 16-bit uniforms, centred and scaled to unit
// variance — integer arithmetic and one float multiply, so it is bit-identical everywhere (libm's
// log/cos in Box-Muller are not) and several times faster. It is bounded at +-3.46 sigma, which
// suits weight initialisation.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/io/hf_layout.h"

namespace loom::io {

inline std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The stream base of one tensor: the model seed mixed with an FNV-1a hash of its name.
inline std::uint64_t random_stream(std::uint64_t seed, std::string_view tensor_name) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (char ch : tensor_name) h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001B3ull;
  return splitmix64_mix(seed ^ h);
}

// Approximately standard normal deviate number `index` of `stream`.
inline float random_normal(std::uint64_t stream, std::uint64_t index) {
  const std::uint64_t r = splitmix64_mix(stream + (index + 1) * 0x9E3779B97F4A7C15ull);
  const std::int64_t sum = static_cast<std::int64_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                                                     ((r >> 32) & 0xFFFF) + (r >> 48));
  // (sum + 2) / 65536 is the sum of four uniforms on (0, 1): mean 2, variance 1/3.
  constexpr float kScale = 1.7320508075688772f / 65536.0f;
  return static_cast<float>(sum + 2 - 131072) * kScale;
}

// Element `index` of a generated tensor: N(0, init_std)-like for weights and biases,
// 1 + N(0, init_std)-like for norm weights (so activations keep their scale).
inline float random_init_value(std::uint64_t stream, TensorRole role, float init_std, std::uint64_t index) {
  const float z = random_normal(stream, index) * init_std;
  return role == TensorRole::kNorm ? 1.0f + z : z;
}

}  // namespace loom::io
