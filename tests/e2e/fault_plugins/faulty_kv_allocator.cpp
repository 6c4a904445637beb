// kv_allocator/faulty: the real allocator (`inner`, e.g. the paged one) with injected faults.
//   fail_rate   probability that reserve() returns false without reserving: an allocation of KV
//               blocks that fails. Through the SDK that is all an allocation failure can be, and
//               the scheduler cannot tell it from a pool that ran dry, so it preempts — which
//               is the behaviour wanted.
//   bad_table_rate  probability that block_table() returns the table without its last block,
//               too short for the step: a contract broken for one sequence.
//   throw_rate  see fault_source.h; every method but set_evictor() and stats() may throw.
#include <span>
#include <vector>

#include "fault_plugins/fault_source.h"
#include "fault_plugins/inner_plugin.h"
#include "loom/kv_allocator.h"

namespace {

using loom::sdk::BlockCopy;
using loom::sdk::BlockId;
using loom::sdk::EvictedBlock;
using loom::sdk::SeqId;
using loom::sdk::Tick;
using loom::sdk::TokenId;

const loom::sdk::ConfigKeySpec kKeys[] = {
    loom::faults::kCommonKeys[0], loom::faults::kCommonKeys[1], loom::faults::kCommonKeys[2],
    loom::faults::kCommonKeys[3], loom::faults::kCommonKeys[4],
    {"fail_rate", loom::sdk::KeyType::number, "0.0", "probability that reserve() fails as if the pool were empty"},
    {"bad_table_rate", loom::sdk::KeyType::number, "0.0", "probability that block_table() misses its last block"},
};

class FaultyAllocator final : public loom::sdk::KvAllocator {
 public:
  FaultyAllocator(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : faults_("kv_allocator", config),
        inner_(config.string("inner"), info),
        fail_rate_(config.number("fail_rate")),
        bad_table_rate_(config.number("bad_table_rate")) {
    if (!(fail_rate_ >= 0.0 && fail_rate_ <= 1.0)) throw config.invalid("fail_rate", "must be in [0, 1]");
  }

  void set_evictor(loom::sdk::Evictor& evictor) override { inner_->set_evictor(evictor); }

  std::size_t num_cached_prefix_tokens(std::span<const TokenId> tokens) const override {
    return faults_.call("num_cached_prefix_tokens", [&] { return inner_->num_cached_prefix_tokens(tokens); });
  }
  std::size_t acquire_cached_prefix(SeqId seq, std::span<const TokenId> tokens, Tick now) override {
    return faults_.call("acquire_cached_prefix", [&] { return inner_->acquire_cached_prefix(seq, tokens, now); });
  }
  std::size_t blocks_needed(SeqId seq, std::size_t start, std::size_t num_tokens) const override {
    return faults_.call("blocks_needed", [&] { return inner_->blocks_needed(seq, start, num_tokens); });
  }
  bool reserve(SeqId seq, std::size_t start, std::size_t num_tokens, Tick now) override {
    if (faults_.fires("reserve", "fail", fail_rate_)) return false;
    return faults_.call("reserve", [&] { return inner_->reserve(seq, start, num_tokens, now); });
  }
  void commit(SeqId seq, std::span<const TokenId> tokens, Tick now) override {
    faults_.call("commit", [&] { inner_->commit(seq, tokens, now); });
  }
  void release(SeqId seq, Tick now) override {
    faults_.call("release", [&] { inner_->release(seq, now); });
  }
  void trim(SeqId seq, std::size_t num_tokens, Tick now) override {
    faults_.call("trim", [&] { inner_->trim(seq, num_tokens, now); });
  }
  void fork(SeqId parent, SeqId child, Tick now) override {
    faults_.call("fork", [&] { inner_->fork(parent, child, now); });
  }
  std::vector<BlockCopy> take_pending_copies() override {
    return faults_.call("take_pending_copies", [&] { return inner_->take_pending_copies(); });
  }
  std::vector<EvictedBlock> take_evictions() override {
    return faults_.call("take_evictions", [&] { return inner_->take_evictions(); });
  }
  std::span<const BlockId> block_table(SeqId seq) const override {
    std::span<const BlockId> table = faults_.call("block_table", [&] { return inner_->block_table(seq); });
    if (!table.empty() && faults_.fires("block_table", "bad", bad_table_rate_)) return table.first(table.size() - 1);
    return table;
  }
  std::size_t num_available_blocks() const override {
    return faults_.call("num_available_blocks", [&] { return inner_->num_available_blocks(); });
  }
  std::size_t num_blocks() const override {
    return faults_.call("num_blocks", [&] { return inner_->num_blocks(); });
  }
  std::size_t block_size() const override {
    return faults_.call("block_size", [&] { return inner_->block_size(); });
  }
  loom::sdk::AllocatorStats stats() const override { return inner_->stats(); }

 private:
  mutable loom::faults::FaultSource faults_;  // const methods draw faults too
  loom::faults::InnerPlugin<loom::sdk::KvAllocator> inner_;
  double fail_rate_;
  double bad_table_rate_;
};

}  // namespace

LOOM_PLUGIN(kv_allocator, "faulty", "1.0.0", "Test fixture: a real allocator with injected failures and throws",
            FaultyAllocator, kKeys)
