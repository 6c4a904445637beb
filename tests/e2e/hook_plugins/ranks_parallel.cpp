// parallel/ranks: `size` CPU ranks in one process, with layers split evenly between them
// (pipeline stages; split = "heads" gives each rank a slice of the query heads but every KV head
// instead, which the engine must refuse). The activations go through the SDK's in-process
// transport (RanksParallel); corrupt = true sends zeros instead, so a test can tell the
// activations really cross. Every call is recorded, one line each, whichever rank's thread makes it.
// init_rank waits for every rank, as a transport's set-up does (NCCL's communicator init): ranks
// set up one after another on one thread would wait there, so it fails after 10 s instead.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "call_log.h"
#include "loom/error.h"
#include "loom/ranks_parallel.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"size", KeyType::integer, "2", "number of ranks"},
    {"devices", KeyType::string, "", "one device per rank (RanksParallel)"},
    {"split", KeyType::string, "layers", "\"layers\" (pipeline stages) or \"heads\""},
    {"corrupt", KeyType::boolean, "false", "deliver zeros instead of the activations sent"},
    {"log", KeyType::string, "", "file the calls are appended to"},
    {"init_fails", KeyType::boolean, "false", "the last rank's init_rank throws"},
};

class RecordingRanks final : public RanksParallel {
 public:
  RecordingRanks(const EngineInfo& info, const PluginConfig& config)
      : RanksParallel(info, config, "ranks"),
        split_heads_(config.string("split") == "heads"),
        corrupt_(config.boolean("corrupt")),
        init_fails_(config.boolean("init_fails")),
        log_(config.string("log")) {}

  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    const std::uint32_t ranks = world_size();
    RankLayout l;
    l.rank = rank;
    l.end_layer = m.num_layers;
    l.end_head = m.num_heads;
    l.end_kv_head = m.num_kv_heads;
    l.end_expert = m.num_experts;
    l.vocab_end = m.vocab_size;
    if (split_heads_) {
      l.first_head = m.num_heads * rank / ranks;
      l.end_head = m.num_heads * (rank + 1) / ranks;
    } else {
      l.first_layer = m.num_layers * rank / ranks;
      l.end_layer = m.num_layers * (rank + 1) / ranks;
    }
    return l;
  }
  void init_rank(std::uint32_t rank) override {
    if (init_fails_ && rank + 1 == world_size())
      throw loom::DeviceError("parallel/ranks: rank " + std::to_string(rank) + " could not join the group");
    {
      std::unique_lock lock(init_mutex_);
      ++arrived_;
      all_arrived_.notify_all();
      if (!all_arrived_.wait_for(lock, std::chrono::seconds(10),
                                 [&] { return arrived_ == world_size() || init_aborted_; }))
        throw loom::DeviceError(
            "parallel/ranks: rank " + std::to_string(rank) +
            " waited 10 s in init_rank for the other ranks; every rank's init_rank must run at once");
      if (init_aborted_) throw loom::DeviceError("parallel/ranks: rank " + std::to_string(rank) + "'s set-up aborted");
    }
    write("init_rank", rank);
  }
  void abort_collectives() override {  // a rank failed: wake the others, in init_rank too
    {
      std::lock_guard lock(init_mutex_);
      init_aborted_ = true;
      all_arrived_.notify_all();
    }
    RanksParallel::abort_collectives();
  }

  void send_next(std::uint32_t rank, const TensorView& buffer, Stream stream) override {
    write("send_next", rank, buffer.shape[0], buffer.shape[1]);
    if (!corrupt_) return RanksParallel::send_next(rank, buffer, stream);
    std::vector<float> zeros(static_cast<std::size_t>(buffer.numel()), 0.0f);
    TensorView lost = buffer;
    lost.data = zeros.data();
    RanksParallel::send_next(rank, lost, stream);
  }
  void recv_prev(std::uint32_t rank, const TensorView& buffer, Stream stream) override {
    write("recv_prev", rank, buffer.shape[0], buffer.shape[1]);
    RanksParallel::recv_prev(rank, buffer, stream);
  }

 private:
  template <typename... Parts>
  void write(const Parts&... parts) {
    std::lock_guard lock(log_mutex_);
    log_.write(parts...);
  }

  std::mutex init_mutex_;
  std::condition_variable all_arrived_;
  std::uint32_t arrived_ = 0;
  bool init_aborted_ = false;
  bool split_heads_;
  bool corrupt_;
  bool init_fails_;
  std::mutex log_mutex_;
  loom::hooks::CallLog log_;
};

}  // namespace

LOOM_PLUGIN(parallel, "ranks", "1.0.0", "Test fixture: N CPU ranks in one process, recording every call",
            RecordingRanks, kKeys)
