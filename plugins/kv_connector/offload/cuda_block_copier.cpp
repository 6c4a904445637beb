// The GPU's copier: the host tier's slots are pinned, so each block moves in one DMA transfer
// (a 2D copy gathering its K and V arrays of every layer, which Loom's CUDA cache places at one
// stride from each other) on the copier's own stream, where the copy engines overlap it with the
// forward passes on the engine's stream. Events order the two streams: a batch starts after the
// work already queued on the engine's stream, and the engine's stream waits for a batch only where
// it must (a load before the forward that reads it, an evicted block before the forward that
// overwrites it). The rates reached with large transfers are measured once at start-up, as the
// bound the copies are compared with.
#include "block_copier.h"
#include "loom/error.h"

#if LOOM_HAVE_CUDA

#include <algorithm>
#include <deque>
#include <optional>

#include <cuda_runtime_api.h>

#include "loom/cuda_buffer.h"
#include "loom/cuda_check.h"

namespace loom::offload {

namespace {

class Event {
 public:
  explicit Event(unsigned flags = cudaEventDefault) { LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags)); }
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class Stream {
 public:
  Stream() { LOOM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() {
    cudaStreamSynchronize(stream_);  // the copies' host memory may be freed next
    cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

int device_index_of(const std::string& device) {
  return device.size() > 5 ? std::stoi(device.substr(5)) : 0;  // "cuda" or "cuda:N", checked by the engine
}

int selected(int device) {
  LOOM_CUDA_CHECK(cudaSetDevice(device));  // before the stream and events are made
  return device;
}

std::uint64_t mb_per_s(std::size_t bytes, float ms) {
  return ms > 0 ? static_cast<std::uint64_t>(static_cast<double>(bytes) / 1e3 / ms) : 0;
}

class CudaBlockCopier final : public BlockCopier {
 public:
  explicit CudaBlockCopier(int device) : device_(selected(device)) {
    LOOM_CUDA_CHECK(cudaDeviceGetAttribute(&max_pitch_, cudaDevAttrMaxPitch, device_));
    measure_peak_rates();
  }

  HostArena allocate_host(std::size_t bytes) override {
    if (bytes == 0) return HostArena(nullptr, [](char*) {});
    void* p = nullptr;
    if (const cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocDefault); status != cudaSuccess) {
      cudaGetLastError();
      throw Error("cannot pin " + std::to_string(bytes >> 20) + " MiB of host memory (" + cudaGetErrorString(status) +
                  "): ask for less");
    }
    return HostArena(static_cast<char*>(p), [](char* q) { cudaFreeHost(q); });
  }

  void begin(const sdk::KvCacheView& cache, sdk::Stream compute) override {
    LOOM_CUDA_CHECK(cudaSetDevice(device_));
    lay_out(cache);
    if (compute) {
      LOOM_CUDA_CHECK(cudaEventRecord(compute_done_.get(), static_cast<cudaStream_t>(compute)));
      LOOM_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), compute_done_.get()));
    }
    open_.emplace();
    LOOM_CUDA_CHECK(cudaEventRecord(open_->start.get(), stream_.get()));
  }

  void copy_out(sdk::BlockId block, std::span<char> to) override {
    copy(to.data(), block, 0, arrays_.size(), false);
    open_->out_bytes += to.size();
  }

  void copy_in(std::span<const char> from, sdk::BlockId block, std::size_t first_layer,
               std::size_t num_layers) override {
    const std::size_t first = 2 * first_layer, count = 2 * std::min(num_layers, arrays_.size() / 2 - first_layer);
    copy(const_cast<char*>(from.data()), block, first, count, true);
    open_->in_bytes += count * array_bytes_;
  }

  BatchId end() override {
    LOOM_CUDA_CHECK(cudaEventRecord(open_->done.get(), stream_.get()));
    open_->id = next_batch_++;
    in_flight_.push_back(std::move(*open_));
    open_.reset();
    collect();
    return next_batch_ - 1;
  }

  void compute_waits(sdk::Stream compute, BatchId batch) override {
    if (!compute) return;
    for (const Batch& b : in_flight_)  // a batch collected is done
      if (b.id == batch) LOOM_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(compute), b.done.get()));
  }

  void finish() override {
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    collect();
  }

  Counts counts() const override {
    collect();
    return counts_;
  }

 private:
  struct Batch {
    Event start, done;
    std::uint64_t in_bytes = 0, out_bytes = 0;
    BatchId id = 0;
  };

  // Where block 0 of each array is, and whether they sit at one stride (one 2D copy a block, if
  // they are one allocation: CUDA refuses a 2D copy across allocations, and copy() then stops).
  void lay_out(const sdk::KvCacheView& cache) {
    array_bytes_ = block_array_bytes(cache);
    arrays_.clear();
    for (const auto& layer : cache.layers) {
      arrays_.push_back(static_cast<char*>(layer.k));
      arrays_.push_back(static_cast<char*>(layer.v));
    }
    stride_ = arrays_.size() > 1 ? static_cast<std::size_t>(arrays_[1] - arrays_[0]) : array_bytes_;
    for (std::size_t i = 1; i < arrays_.size() && stride_ != 0; ++i)
      if (arrays_[i] != arrays_[0] + i * stride_) stride_ = 0;
    if (stride_ < array_bytes_ || stride_ > static_cast<std::size_t>(max_pitch_) || arrays_[0] == refused_2d_)
      stride_ = 0;
  }

  // Arrays [first, first + height) of one block between the cache and its contiguous host bytes
  // (K0 V0 K1 V1 …): one 2D copy, or one per array.
  void copy(char* block_bytes, sdk::BlockId block, std::size_t first, std::size_t height, bool into_cache) {
    const std::size_t n = array_bytes_;
    const cudaMemcpyKind kind = into_cache ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    char* host = block_bytes + first * n;
    if (stride_ != 0) {
      char* device = arrays_[first] + block * n;
      const cudaError_t status = into_cache
                                     ? cudaMemcpy2DAsync(device, stride_, host, n, n, height, kind, stream_.get())
                                     : cudaMemcpy2DAsync(host, n, device, stride_, n, height, kind, stream_.get());
      if (status == cudaSuccess) return;
      // Arrays at one stride but in allocations of their own: one copy per array from now on.
      if (status != cudaErrorInvalidValue) LOOM_CUDA_CHECK(status);
      cudaGetLastError();
      stride_ = 0;
      refused_2d_ = arrays_[0];
    }
    for (std::size_t i = 0; i < height; ++i) {
      char* slice = arrays_[first + i] + block * n;
      char* bytes = host + i * n;
      LOOM_CUDA_CHECK(cudaMemcpyAsync(into_cache ? slice : bytes, into_cache ? bytes : slice, n, kind, stream_.get()));
    }
  }

  // Adds the finished batches' bytes and times to the counts (a batch that copied nothing, as
  // when every evicted block was in the host tier already, took no copy time). A query that is
  // not a success is "not ready" (no error), or a device error that the next checked call reports.
  void collect() const {
    while (!in_flight_.empty() && cudaEventQuery(in_flight_.front().done.get()) == cudaSuccess) {
      const Batch& b = in_flight_.front();
      float ms = 0;
      if ((b.in_bytes > 0 || b.out_bytes > 0) &&
          cudaEventElapsedTime(&ms, b.start.get(), b.done.get()) == cudaSuccess) {
        const auto ns = static_cast<std::uint64_t>(static_cast<double>(ms) * 1e6);
        (b.in_bytes > 0 ? counts_.in_ns : counts_.out_ns) += ns;
      }
      counts_.in_bytes += b.in_bytes;
      counts_.out_bytes += b.out_bytes;
      in_flight_.pop_front();
    }
  }

  // The best of three 256 MiB transfers each way between pinned host memory and the device. A
  // device too full for the buffer reports no rate rather than failing the start.
  void measure_peak_rates() {
    constexpr std::size_t kBytes = 256ull << 20;
    sdk::PinnedBuffer host;
    sdk::DeviceBuffer device;
    try {
      host = sdk::PinnedBuffer(kBytes, "measuring the host-device rates");
      device = sdk::DeviceBuffer(kBytes, "measuring the host-device rates");
    } catch (const DeviceError&) {
      return;
    }
    Event start, stop;
    float best_in = 0, best_out = 0;
    for (int pass = 0; pass < 4; ++pass)  // the first pass warms the path up
      for (bool in : {true, false}) {
        LOOM_CUDA_CHECK(cudaEventRecord(start.get(), stream_.get()));
        LOOM_CUDA_CHECK(cudaMemcpyAsync(in ? device.data() : host.data(), in ? host.data() : device.data(), kBytes,
                                        in ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, stream_.get()));
        LOOM_CUDA_CHECK(cudaEventRecord(stop.get(), stream_.get()));
        LOOM_CUDA_CHECK(cudaEventSynchronize(stop.get()));
        float ms = 0;
        LOOM_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
        float& best = in ? best_in : best_out;
        if (pass > 0) best = best == 0 ? ms : std::min(best, ms);
      }
    counts_.peak_in_mb_per_s = mb_per_s(kBytes, best_in);
    counts_.peak_out_mb_per_s = mb_per_s(kBytes, best_out);
  }

  int device_;
  int max_pitch_ = 0;
  Stream stream_;
  Event compute_done_{cudaEventDisableTiming};
  std::optional<Batch> open_;  // between begin() and end()
  BatchId next_batch_ = 0;
  mutable std::deque<Batch> in_flight_;
  mutable Counts counts_;
  std::vector<char*> arrays_;  // K0 V0 K1 V1 …
  std::size_t array_bytes_ = 0, stride_ = 0;
  const char* refused_2d_ = nullptr;  // the cache whose arrays are allocations of their own
};

}  // namespace

std::unique_ptr<BlockCopier> make_cuda_block_copier(const std::string& device) {
  return std::make_unique<CudaBlockCopier>(device_index_of(device));
}

}  // namespace loom::offload

#else

namespace loom::offload {

std::unique_ptr<BlockCopier> make_cuda_block_copier(const std::string&) {
  throw Error("offload: the KV cache is on a GPU, and this build has no CUDA");
}

}  // namespace loom::offload

#endif
