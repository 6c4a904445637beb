// parallel/ranks: `ranks` CPU ranks in one process, with layers split evenly between them
// (pipeline stages; split = "heads" gives each rank a slice of the query heads but every KV head
// instead, which the engine must refuse). send_next copies the activations into the sending rank's mailbox and recv_prev
// copies them out of the previous rank's, checking the shape; corrupt = true delivers zeros, so a
// test can tell the activations really cross. Every call is recorded.
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "call_log.h"
#include "loom/error.h"
#include "loom/parallel.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"ranks", KeyType::integer, "2", "number of ranks"},
    {"split", KeyType::string, "layers", "\"layers\" (pipeline stages) or \"heads\""},
    {"corrupt", KeyType::boolean, "false", "deliver zeros instead of the activations sent"},
    {"log", KeyType::string, "", "file the calls are appended to"},
};

class RanksParallel final : public Parallel {
 public:
  RanksParallel(const EngineInfo&, const PluginConfig& config)
      : ranks_(static_cast<std::uint32_t>(config.integer("ranks"))),
        split_heads_(config.string("split") == "heads"),
        corrupt_(config.boolean("corrupt")),
        log_(config.string("log")) {}

  std::uint32_t world_size() const override { return ranks_; }
  RankLayout layout(const ModelShape& m, std::uint32_t rank) const override {
    RankLayout l;
    l.rank = rank;
    l.end_layer = m.num_layers;
    l.end_head = m.num_heads;
    l.end_kv_head = m.num_kv_heads;
    l.ffn_parts = 1;
    l.end_expert = m.num_experts;
    l.vocab_end = m.vocab_size;
    if (split_heads_) {
      l.first_head = m.num_heads * rank / ranks_;
      l.end_head = m.num_heads * (rank + 1) / ranks_;
    } else {
      l.first_layer = m.num_layers * rank / ranks_;
      l.end_layer = m.num_layers * (rank + 1) / ranks_;
    }
    return l;
  }
  Device device_of(std::uint32_t) const override { return {}; }
  void init_rank(std::uint32_t rank) override { log_.write("init_rank", rank); }

  void send_next(std::uint32_t rank, const TensorView& buffer, Stream) override {
    log_.write("send_next", rank, buffer.shape[0], buffer.shape[1]);
    Mail& mail = mailbox_[rank];
    mail.shape = buffer.shape;
    mail.bytes.resize(static_cast<std::size_t>(buffer.numel()) * dtype_size(buffer.dtype));
    std::memcpy(mail.bytes.data(), buffer.data, mail.bytes.size());
    if (corrupt_) std::fill(mail.bytes.begin(), mail.bytes.end(), 0);
  }
  void recv_prev(std::uint32_t rank, const TensorView& buffer, Stream) override {
    log_.write("recv_prev", rank, buffer.shape[0], buffer.shape[1]);
    auto it = mailbox_.find(rank - 1);
    if (rank == 0 || it == mailbox_.end() || it->second.shape != buffer.shape)
      throw loom::DeviceError("parallel/ranks: rank " + std::to_string(rank) + " receives nothing of its shape");
    std::memcpy(buffer.data, it->second.bytes.data(), it->second.bytes.size());
    mailbox_.erase(it);
  }
  void all_reduce_sum(std::uint32_t, const TensorView&, Stream) override {}
  void all_to_all(std::uint32_t, const TensorView&, const TensorView&, Stream) override {}
  void all_to_all_v(std::uint32_t, const TensorView&, std::span<const std::uint64_t>, const TensorView&,
                    std::span<const std::uint64_t>, Stream) override {}
  void all_gather(std::uint32_t, const TensorView&, const TensorView&, Stream) override {}

 private:
  struct Mail {
    std::array<std::int64_t, 4> shape{};
    std::vector<unsigned char> bytes;
  };
  std::uint32_t ranks_;
  bool split_heads_;
  bool corrupt_;
  loom::hooks::CallLog log_;
  std::map<std::uint32_t, Mail> mailbox_;  // by sending rank
};

}  // namespace

LOOM_PLUGIN(parallel, "ranks", "1.0.0", "Test fixture: N CPU ranks in one process, recording every call",
            RanksParallel, kKeys)
