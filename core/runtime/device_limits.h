// The physical limits benchmarks are reported against, measured on the device at hand: copy
// bandwidth (a device-to-device cudaMemcpy, read + write bytes) and the dense 16-bit GEMM rate
// (cuBLAS, 8192^3, fp32 accumulation); and, for batch-1 decode, how fast one row times weights
// that do not fit L2 streams through Loom's GEMV and through cuBLAS (the peer). Plain C++: a
// build without CUDA throws DeviceError.
#pragma once

namespace loom::runtime {

struct DeviceLimits {
  double copy_gb_s = 0;    // bytes read + written per second / 1e9
  double gemm_tflops = 0;  // dense fp16/bf16 GEMM, 1e12 flop/s
  double gemv_gb_s = 0;         // weight bytes read per second / 1e9, one row, Loom's GEMV
  double cublas_gemv_gb_s = 0;  // the same through cuBLAS
};

// Runs for about a second on the current device; medians of several timed repetitions.
DeviceLimits measure_device_limits(bool fp16);

}  // namespace loom::runtime
