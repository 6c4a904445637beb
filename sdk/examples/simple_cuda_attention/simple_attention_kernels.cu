#include "simple_attention_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace simple_attention {
namespace {

constexpr int kMaxDimsPerLane = 8;  // head_dim <= 32 * 8

__device__ float to_float(__half x) { return __half2float(x); }
__device__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ T from_float(float x);
template <>
__device__ __half from_float<__half>(float x) { return __float2half(x); }
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

// Row of the cache holding position `pos` of the token's sequence.
__device__ long long cache_row(const StepLayout& layout, int token, int pos, int block_size) {
  const std::int32_t block = layout.tables[layout.table_starts[token] + pos / block_size];
  return static_cast<long long>(block) * block_size + pos % block_size;
}

__global__ void store_kv_kernel(StepLayout layout, Shape shape, const unsigned short* k, const unsigned short* v,
                                unsigned short* k_cache, unsigned short* v_cache) {
  const int token = blockIdx.x;
  if (token >= *layout.num_tokens) return;
  const int width = shape.num_kv_heads * shape.head_dim;
  const long long row = cache_row(layout, token, layout.positions[token], shape.block_size);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    k_cache[row * width + i] = k[static_cast<long long>(token) * width + i];
    v_cache[row * width + i] = v[static_cast<long long>(token) * width + i];
  }
}

template <typename T>
__global__ void attend_kernel(StepLayout layout, Shape shape, const T* q, const T* k_cache, const T* v_cache, T* out) {
  const int token = blockIdx.x, head = blockIdx.y, lane = threadIdx.x;
  if (token >= *layout.num_tokens) return;
  const int d = shape.head_dim, kv_head = head / (shape.num_heads / shape.num_kv_heads);
  const int kv_width = shape.num_kv_heads * d;
  float q_part[kMaxDimsPerLane], acc[kMaxDimsPerLane];
  const T* q_row = q + (static_cast<long long>(token) * shape.num_heads + head) * d;
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int dim = lane + 32 * i;
    q_part[i] = dim < d ? to_float(q_row[dim]) * shape.scale : 0.0f;
    acc[i] = 0.0f;
  }
  float running_max = -INFINITY, running_sum = 0.0f;
  for (int pos = 0; pos <= layout.positions[token]; ++pos) {
    const long long base = cache_row(layout, token, pos, shape.block_size) * kv_width + kv_head * d;
    float dot = 0.0f;
    for (int i = 0; i < kMaxDimsPerLane; ++i)
      if (lane + 32 * i < d) dot += q_part[i] * to_float(k_cache[base + lane + 32 * i]);
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    const float new_max = fmaxf(running_max, dot);
    const float correction = __expf(running_max - new_max), weight = __expf(dot - new_max);
    running_sum = running_sum * correction + weight;
    for (int i = 0; i < kMaxDimsPerLane; ++i)
      if (lane + 32 * i < d) acc[i] = acc[i] * correction + weight * to_float(v_cache[base + lane + 32 * i]);
    running_max = new_max;
  }
  T* out_row = out + (static_cast<long long>(token) * shape.num_heads + head) * d;
  for (int i = 0; i < kMaxDimsPerLane; ++i)
    if (lane + 32 * i < d) out_row[lane + 32 * i] = from_float<T>(acc[i] / running_sum);
}

}  // namespace

cudaError_t store_kv(const StepLayout& layout, const Shape& shape, const void* k, const void* v, void* k_cache,
                     void* v_cache, cudaStream_t stream) {
  if (shape.rows == 0) return cudaSuccess;
  store_kv_kernel<<<shape.rows, 128, 0, stream>>>(layout, shape, static_cast<const unsigned short*>(k),
                                                  static_cast<const unsigned short*>(v),
                                                  static_cast<unsigned short*>(k_cache),
                                                  static_cast<unsigned short*>(v_cache));
  return cudaGetLastError();
}

cudaError_t attend(const StepLayout& layout, const Shape& shape, const void* q, const void* k_cache,
                   const void* v_cache, void* out, cudaStream_t stream) {
  if (shape.head_dim > 32 * kMaxDimsPerLane || shape.num_kv_heads == 0 || shape.num_heads % shape.num_kv_heads != 0)
    return cudaErrorInvalidValue;
  if (shape.rows == 0) return cudaSuccess;
  const dim3 grid(shape.rows, shape.num_heads);
  if (shape.bf16)
    attend_kernel<<<grid, 32, 0, stream>>>(layout, shape, static_cast<const __nv_bfloat16*>(q),
                                           static_cast<const __nv_bfloat16*>(k_cache),
                                           static_cast<const __nv_bfloat16*>(v_cache),
                                           static_cast<__nv_bfloat16*>(out));
  else
    attend_kernel<<<grid, 32, 0, stream>>>(layout, shape, static_cast<const __half*>(q),
                                           static_cast<const __half*>(k_cache), static_cast<const __half*>(v_cache),
                                           static_cast<__half*>(out));
  return cudaGetLastError();
}

}  // namespace simple_attention
