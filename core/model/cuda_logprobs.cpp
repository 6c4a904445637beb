#include "core/model/cuda_logprobs.h"

#include <algorithm>
#include <vector>

#include "loom/cuda_check.h"
#include "loom/kernels/cuda/logprobs.h"

namespace loom {

namespace kc = kernels::cuda;

std::size_t CudaLogprobs::results_offset(std::size_t rows) { return (rows * sizeof(kc::LogprobRow) + 255) / 256 * 256; }

std::size_t CudaLogprobs::bytes_for(std::size_t rows) {
  return results_offset(rows) + rows * sizeof(kc::LogprobResult);
}

void CudaLogprobs::reserve(std::size_t rows) {
  const std::size_t bytes = bytes_for(rows);
  if (rows == 0 || device_.bytes() >= bytes) return;
  device_ = sdk::DeviceBuffer(bytes, "the log-probability rows");
  host_ = sdk::PinnedBuffer(bytes, "the log-probability rows");
}

void CudaLogprobs::read(const float* logits, int vocab, std::span<const OutputRow> rows, std::size_t num_rows,
                        std::span<const std::int32_t> tokens, std::span<TokenLogprobs> out, cudaStream_t stream) {
  std::vector<std::size_t> asked;
  for (std::size_t r = 0; r < rows.size() && r < num_rows; ++r)
    if (rows[r].logprobs >= 0) asked.push_back(r);
  if (asked.empty()) return;
  const std::size_t n = asked.size();
  const std::size_t results_at = results_offset(n);
  reserve(n);
  auto* host_rows = host_.as<kc::LogprobRow>();
  for (std::size_t i = 0; i < n; ++i)
    host_rows[i] = {static_cast<std::int32_t>(asked[i]), tokens[asked[i]], rows[asked[i]].logprobs};
  auto* device = device_.as<unsigned char>();
  auto* host = host_.as<unsigned char>();
  LOOM_CUDA_CHECK(cudaMemcpyAsync(device, host, n * sizeof(kc::LogprobRow), cudaMemcpyHostToDevice, stream));
  LOOM_CUDA_CHECK(kc::row_logprobs(logits, vocab, reinterpret_cast<const kc::LogprobRow*>(device), static_cast<int>(n),
                                   reinterpret_cast<kc::LogprobResult*>(device + results_at), stream));
  LOOM_CUDA_CHECK(cudaMemcpyAsync(host + results_at, device + results_at, n * sizeof(kc::LogprobResult),
                                  cudaMemcpyDeviceToHost, stream));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
  const auto* results = reinterpret_cast<const kc::LogprobResult*>(host + results_at);
  for (std::size_t i = 0; i < n; ++i) {
    TokenLogprobs& t = out[asked[i]];
    t.token = tokens[asked[i]];
    t.logprob = results[i].logprob;
    t.top.clear();
    const int top_n = std::min(std::min(rows[asked[i]].logprobs, kc::kMaxTopLogprobs), vocab);
    for (int k = 0; k < top_n; ++k) t.top.emplace_back(results[i].top_ids[k], results[i].top_logprobs[k]);
  }
}

}  // namespace loom
