#include "core/runtime/device_limits.h"

#include <algorithm>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "core/runtime/cublas_linear.h"
#include "core/runtime/device_memory.h"
#include "loom/cuda_check.h"

namespace loom::runtime {

namespace {

// Median milliseconds of `reps` timed runs of `work` after one warm-up run.
template <typename F>
float median_ms(CudaStream& stream, int reps, F&& work) {
  cudaEvent_t start, stop;
  LOOM_CUDA_CHECK(cudaEventCreate(&start));
  LOOM_CUDA_CHECK(cudaEventCreate(&stop));
  work();
  std::vector<float> times;
  for (int i = 0; i < reps; ++i) {
    LOOM_CUDA_CHECK(cudaEventRecord(start, stream.get()));
    work();
    LOOM_CUDA_CHECK(cudaEventRecord(stop, stream.get()));
    LOOM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    LOOM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace

DeviceLimits measure_device_limits(bool fp16) {
  DeviceLimits limits;
  CudaStream stream;
  {
    const std::size_t bytes = 2ull << 30;
    DeviceBuffer a(bytes, "the bandwidth probe"), b(bytes, "the bandwidth probe");
    const float ms = median_ms(stream, 9, [&] {
      LOOM_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
    });
    limits.copy_gb_s = 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
  }
  {
    const int n = 8192;
    const std::size_t bytes = static_cast<std::size_t>(n) * n * 2;
    DeviceBuffer a(bytes, "the GEMM probe"), b(bytes, "the GEMM probe"), c(bytes, "the GEMM probe");
    LOOM_CUDA_CHECK(cudaMemsetAsync(a.data(), 0, bytes, stream.get()));
    LOOM_CUDA_CHECK(cudaMemsetAsync(b.data(), 0, bytes, stream.get()));
    CublasLinear linear(stream.get());
    const auto dtype = fp16 ? kernels::cuda::DType::f16 : kernels::cuda::DType::bf16;
    const float ms = median_ms(stream, 9, [&] { linear.run(a.data(), n, n, b.data(), n, c.data(), dtype); });
    limits.gemm_tflops = 2.0 * n * double(n) * n / (ms * 1e-3) / 1e12;
  }
  {
    // Four 16384 x 4096 matrices (512 MiB, far more than L2) times one row, back to back.
    const int out = 16384, in = 4096, count = 4;
    const std::size_t matrix = static_cast<std::size_t>(out) * in * 2;
    DeviceBuffer w(count * matrix, "the GEMV probe"), x(in * 2, "the GEMV probe"), y(out * 2, "the GEMV probe");
    LOOM_CUDA_CHECK(cudaMemsetAsync(w.data(), 0, count * matrix, stream.get()));
    LOOM_CUDA_CHECK(cudaMemsetAsync(x.data(), 0, in * 2, stream.get()));
    const auto dtype = fp16 ? kernels::cuda::DType::f16 : kernels::cuda::DType::bf16;
    auto rate = [&](bool own_gemv) {
      CublasLinear linear(stream.get(), own_gemv);
      const float ms = median_ms(stream, 9, [&] {
        for (int i = 0; i < count; ++i)
          linear.run(x.data(), 1, in, w.as<unsigned char>() + i * matrix, out, y.data(), dtype);
      });
      return static_cast<double>(count * matrix) / (ms * 1e-3) / 1e9;
    };
    limits.gemv_gb_s = rate(true);
    limits.cublas_gemv_gb_s = rate(false);
  }
  return limits;
}

}  // namespace loom::runtime
