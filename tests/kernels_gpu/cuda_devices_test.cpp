// The CUDA runtime sees the GPU and reports sane properties (run on the GPU machine).
#include "loom/kernels/cuda_devices.h"

#include <gtest/gtest.h>

namespace loom::kernels {
namespace {

TEST(CudaDevices, EnumeratesTheGpu) {
  std::string why;
  auto devices = cuda_devices(&why);
  if (devices.empty()) GTEST_SKIP() << "no GPU to test: " << why;
  for (const auto& device : devices) {
    EXPECT_FALSE(device.name.empty());
    EXPECT_GT(device.total_bytes, std::size_t{1} << 30) << device.name;
    EXPECT_GE(device.compute_major, 7) << device.name;
  }
}

TEST(CudaDevices, ABuildWithoutCudaSaysSo) {
  if (cuda_compiled()) GTEST_SKIP() << "this build has the CUDA backend";
  std::string why;
  EXPECT_TRUE(cuda_devices(&why).empty());
  EXPECT_NE(why.find("no CUDA backend"), std::string::npos) << why;
}

}  // namespace
}  // namespace loom::kernels
