// The offload connector's GPU copier against a host-side reference, byte for byte: blocks out of
// a CUDA KV cache into pinned host slots and back into other blocks, in both of its layouts (one
// allocation with the arrays at one stride — one 2D copy a block — and arrays allocated apart —
// one copy per array), with the untouched blocks checked unchanged; a copy out ordered after
// work queued on the engine's stream; and the counts of bytes, times and start-up rates.
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "block_copier.h"
#include "core/runtime/device_memory.h"
#include "support/gpu_test_util.h"

namespace loom::offload {
namespace {

constexpr std::uint32_t kLayers = 3, kBlocks = 7, kBlockSize = 16, kHeads = 2, kHeadDim = 24;
constexpr std::size_t kArrayBytes = std::size_t{kBlocks} * kBlockSize * kHeads * kHeadDim * 2;  // bf16
constexpr std::size_t kBlockArrayBytes = kArrayBytes / kBlocks;
constexpr std::size_t kBlockBytes = kBlockArrayBytes * 2 * kLayers;

// A bf16 cache of kLayers layers whose 2 x kLayers arrays are either one allocation at one
// stride (as Loom's CUDA cache) or allocations of their own; filled with random bytes, a copy of
// each array kept on the host.
struct TestCache {
  explicit TestCache(bool one_allocation) {
    std::mt19937 rng(one_allocation ? 1 : 2);
    if (one_allocation) buffers.emplace_back(kArrayBytes * 2 * kLayers, "cache");
    for (std::uint32_t a = 0; a < 2 * kLayers; ++a) {
      if (!one_allocation) buffers.emplace_back(kArrayBytes, "array");
      char* base = one_allocation ? buffers[0].as<char>() + a * kArrayBytes : buffers.back().as<char>();
      arrays.push_back(base);
      host.emplace_back(kArrayBytes);
      for (char& c : host.back()) c = static_cast<char>(rng());
      LOOM_CUDA_CHECK(cudaMemcpy(base, host.back().data(), kArrayBytes, cudaMemcpyHostToDevice));
    }
    for (std::uint32_t l = 0; l < kLayers; ++l) layers.push_back({arrays[2 * l], arrays[2 * l + 1]});
    view.dtype = sdk::DType::bf16;
    view.device = sdk::Device{sdk::DeviceKind::cuda, 0};
    view.num_blocks = kBlocks;
    view.block_size = kBlockSize;
    view.num_kv_heads = kHeads;
    view.head_dim = kHeadDim;
    view.layers = layers;
  }
  // Block `block` as the host tier stores it: K then V of every layer.
  std::vector<char> expected_block(std::uint32_t block) const {
    std::vector<char> bytes;
    for (const auto& array : host)
      bytes.insert(bytes.end(), array.begin() + block * kBlockArrayBytes,
                   array.begin() + (block + 1) * kBlockArrayBytes);
    return bytes;
  }
  std::vector<char> device_array(std::size_t a) const {
    std::vector<char> bytes(kArrayBytes);
    LOOM_CUDA_CHECK(cudaMemcpy(bytes.data(), arrays[a], kArrayBytes, cudaMemcpyDeviceToHost));
    return bytes;
  }

  std::vector<runtime::DeviceBuffer> buffers;
  std::vector<char*> arrays;
  std::vector<std::vector<char>> host;
  std::vector<sdk::KvCacheView::Layer> layers;
  sdk::KvCacheView view;
};

class CudaBlockCopier : public ::testing::TestWithParam<bool> {};

TEST_P(CudaBlockCopier, BlocksGoOutToPinnedSlotsAndBackIntoOtherBlocksByteForByte) {
  LOOM_REQUIRE_GPU();
  TestCache cache(GetParam());
  runtime::CudaStream compute;
  auto copier = make_cuda_block_copier("cuda");
  HostArena slots = copier->allocate_host(2 * kBlockBytes);
  std::memset(slots.get(), 0x5A, 2 * kBlockBytes);
  std::span<char> slot0(slots.get(), kBlockBytes), slot1(slots.get() + kBlockBytes, kBlockBytes);

  copier->begin(cache.view, compute.get());
  copier->copy_out(5, slot0);
  copier->copy_out(2, slot1);
  copier->end();
  copier->finish();
  EXPECT_EQ(std::vector<char>(slot0.begin(), slot0.end()), cache.expected_block(5));
  EXPECT_EQ(std::vector<char>(slot1.begin(), slot1.end()), cache.expected_block(2));

  copier->begin(cache.view, compute.get());
  copier->copy_in(slot0, 1);
  copier->copy_in(slot1, 6);
  copier->compute_waits(compute.get(), copier->end());
  compute.synchronize();  // the engine's stream has waited for the loads
  for (std::size_t a = 0; a < 2 * kLayers; ++a) {
    std::vector<char> want = cache.host[a];
    std::memcpy(want.data() + 1 * kBlockArrayBytes, cache.host[a].data() + 5 * kBlockArrayBytes, kBlockArrayBytes);
    std::memcpy(want.data() + 6 * kBlockArrayBytes, cache.host[a].data() + 2 * kBlockArrayBytes, kBlockArrayBytes);
    EXPECT_EQ(cache.device_array(a), want) << "array " << a << ": blocks 1 and 6 loaded, the others unchanged";
  }

  const BlockCopier::Counts counts = copier->counts();
  EXPECT_EQ(counts.out_bytes, 2 * kBlockBytes);
  EXPECT_EQ(counts.in_bytes, 2 * kBlockBytes);
  EXPECT_GT(counts.out_ns, 0u);
  EXPECT_GT(counts.in_ns, 0u);
  EXPECT_GT(counts.peak_in_mb_per_s, 1000u) << "pinned host-to-device copies of 256 MiB run at GB/s";
  EXPECT_GT(counts.peak_out_mb_per_s, 1000u);
}

// A load by groups of layers: each batch moves only its layers' arrays of the block, and the
// engine's stream, waiting for the second batch, sees both.
TEST_P(CudaBlockCopier, ABlockLoadedLayerGroupByLayerGroupFillsOnlyTheGroupsAskedFor) {
  LOOM_REQUIRE_GPU();
  TestCache cache(GetParam());
  runtime::CudaStream compute;
  auto copier = make_cuda_block_copier("cuda");
  HostArena slot = copier->allocate_host(kBlockBytes);
  for (std::size_t i = 0; i < kBlockBytes; ++i) slot.get()[i] = static_cast<char>(i * 7 + 3);
  const std::span<const char> bytes(slot.get(), kBlockBytes);
  copier->begin(cache.view, compute.get());
  copier->copy_in(bytes, 4, 0, 1);  // layer 0
  const BlockCopier::BatchId first = copier->end();
  copier->begin(cache.view, nullptr);
  copier->copy_in(bytes, 4, 2, BlockCopier::kAllLayers);  // layers 2 and after
  const BlockCopier::BatchId second = copier->end();
  EXPECT_NE(first, second);
  copier->compute_waits(compute.get(), second);
  compute.synchronize();
  for (std::size_t a = 0; a < 2 * kLayers; ++a) {
    std::vector<char> want = cache.host[a];
    if (a / 2 != 1)
      std::memcpy(want.data() + 4 * kBlockArrayBytes, slot.get() + a * kBlockArrayBytes, kBlockArrayBytes);
    EXPECT_EQ(cache.device_array(a), want) << "array " << a << " (layer " << a / 2 << "; layer 1 not asked for)";
  }
  copier->finish();
  EXPECT_EQ(copier->counts().in_bytes, (2 * kLayers - 2) * kBlockArrayBytes);
}

// Batches that copy nothing (every evicted block already in the host tier) add no copy time:
// the rates count only time spent copying.
TEST_P(CudaBlockCopier, BatchesThatCopyNothingAddNoCopyTime) {
  LOOM_REQUIRE_GPU();
  TestCache cache(GetParam());
  runtime::CudaStream compute;
  auto copier = make_cuda_block_copier("cuda");
  runtime::DeviceBuffer ballast(512ull << 20, "ballast");  // keeps the engine's stream busy
  for (int i = 0; i < 20; ++i) {
    LOOM_CUDA_CHECK(cudaMemsetAsync(ballast.data(), i, ballast.bytes(), compute.get()));
    copier->begin(cache.view, compute.get());
    copier->compute_waits(compute.get(), copier->end());
  }
  copier->finish();
  const BlockCopier::Counts counts = copier->counts();
  EXPECT_EQ(counts.in_ns + counts.out_ns, 0u);
  EXPECT_EQ(counts.in_bytes + counts.out_bytes, 0u);
}

// A copy out begins after the work already queued on the engine's stream: here a memset of the
// whole cache behind a busy wait, which a copy that did not wait would overtake.
TEST_P(CudaBlockCopier, ACopyOutSeesWhatTheEnginesStreamWroteBeforeIt) {
  LOOM_REQUIRE_GPU();
  TestCache cache(GetParam());
  runtime::CudaStream compute;
  auto copier = make_cuda_block_copier("cuda");
  HostArena slot = copier->allocate_host(kBlockBytes);
  runtime::DeviceBuffer ballast(512ull << 20, "ballast");  // copied first, to hold the stream up
  LOOM_CUDA_CHECK(cudaMemsetAsync(ballast.data(), 1, ballast.bytes(), compute.get()));
  for (char* array : cache.arrays) LOOM_CUDA_CHECK(cudaMemsetAsync(array, 0x33, kArrayBytes, compute.get()));
  copier->begin(cache.view, compute.get());
  copier->copy_out(3, {slot.get(), kBlockBytes});
  copier->end();
  copier->finish();
  EXPECT_EQ(std::vector<char>(slot.get(), slot.get() + kBlockBytes), std::vector<char>(kBlockBytes, 0x33));
}

INSTANTIATE_TEST_SUITE_P(Layouts, CudaBlockCopier, ::testing::Bool(), [](const auto& info) {
  return std::string(info.param ? "OneAllocationAtOneStride" : "ArraysAllocatedApart");
});

}  // namespace
}  // namespace loom::offload
