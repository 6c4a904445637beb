// kv_connector/offload: KV blocks that leave the KV pool go to host memory instead of being
// lost, and from there to disk; a later request whose prefix they hold loads them back instead
// of recomputing them (docs/offload.md). Blocks are keyed by content hash, as the prefix cache
// keys them; which block leaves a full tier is chosen by an evictor plugin the engine lends
// (host_evictor, disk_evictor). Every failure is a miss: a block that cannot be saved is not
// saved, a block that cannot be read is recomputed by the engine; never wrong KV, never a failed
// request.
//
// The KV pool may be in host memory (the CPU engine) or on a CUDA device, where the host tier is
// pinned and each block moves in one transfer on the copier's own stream, overlapped with compute
// (block_copier.h). The CPU touches host slots only on the disk tier's path, after the copies in
// flight are done.
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "block_copier.h"
#include "disk_tier.h"
#include "host_tier.h"
#include "loom/block_hash.h"
#include "loom/engine_services.h"
#include "loom/error.h"
#include "loom/host_memory.h"
#include "loom/kv_connector.h"

namespace {

using loom::offload::BlockCopier;
using loom::offload::DiskTier;
using loom::offload::HostTier;
using loom::sdk::BlockHash;
using loom::sdk::KvCacheView;
using loom::sdk::KvTransfer;
using loom::sdk::Stream;
using loom::sdk::TokenId;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"host_bytes", loom::sdk::KeyType::bytes, "0",
     "host memory for offloaded KV blocks (0: a quarter of the memory available at start, at most 16 GiB)"},
    {"disk_path", loom::sdk::KeyType::string, "",
     "folder for the disk tier, which takes the blocks the host tier lets go (\"\": no disk tier)"},
    {"disk_bytes", loom::sdk::KeyType::bytes, "16GiB", "the most the disk tier's files take"},
    {"save_new_blocks", loom::sdk::KeyType::boolean, "false",
     "also copy every newly computed full block to the host tier, not only the blocks the pool evicts"},
    {"host_evictor", loom::sdk::KeyType::string, "lru",
     "the evictor plugin that picks which block leaves the host tier (lru, lfu, arc or a path)"},
    {"disk_evictor", loom::sdk::KeyType::string, "lru",
     "the evictor plugin that picks which block file leaves the disk tier (lru, lfu, arc or a path)"},
    {"load_layer_groups", loom::sdk::KeyType::integer, "2",
     "a load moves in this many groups of layers, one transfer per block each; the forward waits before a "
     "layer only for its group (more groups: the compute starts sooner, the transfers are smaller)"},
};

// An evictor plugin for a tier of `blocks`, lent by the engine; refused by its key.
std::shared_ptr<loom::sdk::Evictor> tier_evictor(const loom::sdk::EngineInfo& info,
                                                 const loom::sdk::PluginConfig& config, const char* key,
                                                 std::uint64_t blocks) {
  if (!info.services) throw loom::Error("offload: this engine lends no evictor plugins");
  try {
    return info.services->make_evictor(config.string(key), blocks);
  } catch (const loom::Error& e) {
    throw config.invalid(key, e.what());
  }
}

constexpr std::uint64_t kDefaultHostCap = 16ull << 30;

class OffloadConnector final : public loom::sdk::KvConnector {
 public:
  OffloadConnector(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : block_size_(info.block_size), block_bytes_(info.block_bytes()) {
#if !LOOM_HAVE_CUDA
    if (info.device != "cpu")
      throw loom::ConfigError(
          "[kv_connector] plugin = \"offload\": this build has no CUDA, so the offload tier "
          "runs with [engine] device = \"cpu\" only");
#endif
    std::uint64_t host_bytes = static_cast<std::uint64_t>(config.integer("host_bytes"));
    const std::uint64_t available = loom::sdk::available_host_memory();
    if (host_bytes == 0) host_bytes = std::min(kDefaultHostCap, available / 4);
    if (available > 0 && host_bytes > available)
      throw config.invalid("host_bytes",
                           "asks for more than the " + std::to_string(available >> 20) + " MiB of memory available");
    const std::uint64_t host_blocks = block_bytes_ ? host_bytes / block_bytes_ : 0;
    copier_ = info.device == "cpu" ? loom::offload::make_cpu_block_copier()
                                   : loom::offload::make_cuda_block_copier(info.device);
    loom::offload::HostArena arena(nullptr, nullptr);
    try {
      arena = copier_->allocate_host(host_blocks * block_bytes_);
    } catch (const loom::Error& e) {
      throw config.invalid("host_bytes", e.what());
    }
    host_ = std::make_unique<HostTier>(block_bytes_, host_blocks,
                                       tier_evictor(info, config, "host_evictor", host_blocks), std::move(arena));
    if (const std::string& folder = config.string("disk_path"); !folder.empty()) {
      const auto disk_bytes = static_cast<std::uint64_t>(config.integer("disk_bytes"));
      auto order = tier_evictor(info, config, "disk_evictor", DiskTier::files_for(block_bytes_, disk_bytes));
      try {
        disk_ = std::make_unique<DiskTier>(folder, block_bytes_, disk_bytes, std::move(order));
      } catch (const std::exception& e) {
        throw config.invalid("disk_path", e.what());
      }
    }
    save_new_blocks_ = config.boolean("save_new_blocks");
    load_layer_groups_ = config.integer("load_layer_groups");
    if (load_layer_groups_ < 1) throw config.invalid("load_layer_groups", "must be at least 1");
    staging_.resize(block_bytes_);
  }

  std::size_t num_loadable_tokens(std::span<const TokenId>, std::span<const BlockHash> hashes,
                                  std::size_t num_local_tokens) override {
    std::size_t block = num_local_tokens / block_size_;
    while (block < hashes.size() && (host_->contains(hashes[block]) || (disk_ && disk_->contains(hashes[block]))))
      ++block;
    return block * block_size_ - num_local_tokens;
  }

  // Copies each block from the host tier, or from disk through the host tier, in groups of
  // layers: a batch of one transfer per block for each group, the first now, each next one when
  // the forward reaches the group before it (the CPU issues many transfers: the forward's kernels
  // are not held up behind them), so that a layer waits only for its group and the first layers
  // compute while the later ones are copied. A block that is no longer in either tier (or fails
  // its checksum) fails the load: the engine then recomputes, once the copies already begun have
  // landed (they must not overwrite what it computes).
  void start_load(std::span<const KvTransfer> loads, const KvCacheView& cache, Stream stream) override {
    load_cache_ = cache;
    load_batches_.clear();
    num_load_batches_ = 0;  // until the blocks are found
    found_.clear();
    copier_->begin(cache, stream);
    try {
      for (const KvTransfer& t : loads)
        for (std::size_t i = 0; i < t.blocks.size(); ++i) find_or_load(t, i);
      const std::size_t layers = cache.layers.size();
      const auto groups = static_cast<std::size_t>(load_layer_groups_);
      layers_per_load_batch_ = std::max<std::size_t>(1, (layers + groups - 1) / groups);
      num_load_batches_ = found_.empty() ? 1 : (layers + layers_per_load_batch_ - 1) / layers_per_load_batch_;
      copy_next_layers();
    } catch (...) {
      copier_->finish();
      throw;
    }
  }

  void wait_for_load(Stream stream) override {
    while (load_batches_.size() < num_load_batches_) {
      copier_->begin(load_cache_, nullptr);
      copy_next_layers();
    }
    if (!load_batches_.empty()) copier_->compute_waits(stream, load_batches_.back());
  }

  void wait_for_layer_load(std::uint32_t layer, Stream stream) override {
    if (layer % layers_per_load_batch_ != 0) return;
    const std::size_t batch = layer / layers_per_load_batch_;
    if (batch + 1 == load_batches_.size() && load_batches_.size() < num_load_batches_) {
      copier_->begin(load_cache_, nullptr);  // after the load's first batch: the stream keeps order
      copy_next_layers();
    }
    if (batch < load_batches_.size()) copier_->compute_waits(stream, load_batches_[batch]);
  }

  void save(std::span<const KvTransfer> saves, const KvCacheView& cache, Stream stream) override {
    if (!save_new_blocks_) return;
    copier_->begin(cache, stream);
    for (const KvTransfer& t : saves)
      for (std::size_t i = 0; i < t.hashes.size(); ++i) keep_from_cache(t.hashes[i], t.blocks[i]);
    copier_->end();  // full blocks do not change: the copies overlap the next steps
  }

  // The next forward may overwrite these blocks: it waits for their copies.
  void on_evicted(std::span<const loom::sdk::EvictedBlock> blocks, const KvCacheView& cache, Stream stream) override {
    copier_->begin(cache, stream);
    for (const auto& b : blocks) keep_from_cache(b.hash, b.block);
    copier_->compute_waits(stream, copier_->end());
  }

  void on_finished(loom::sdk::SeqId) override {}

  std::vector<std::pair<std::string, std::uint64_t>> counts() const override {
    const BlockCopier::Counts copies = copier_->counts();
    return {{"host_loaded_tokens", host_loaded_tokens_},
            {"disk_loaded_tokens", disk_loaded_tokens_},
            {"kept_blocks", kept_blocks_},
            {"spilled_blocks", spilled_blocks_},
            {"copied_in_bytes", copies.in_bytes},
            {"copy_in_ns", copies.in_ns},
            {"copied_out_bytes", copies.out_bytes},
            {"copy_out_ns", copies.out_ns},
            {"peak_in_mb_per_s", copies.peak_in_mb_per_s},
            {"peak_out_mb_per_s", copies.peak_out_mb_per_s}};
  }

 private:
  // The next group of layers of the blocks found in the host tier, into the batch begun.
  void copy_next_layers() {
    const std::size_t first = load_batches_.size() * layers_per_load_batch_;
    for (const auto& [bytes, block] : found_) copier_->copy_in(bytes, block, first, layers_per_load_batch_);
    load_batches_.push_back(copier_->end());
  }

  // Block i of a load: found in the host tier (into found_, copied by layer groups), or read from
  // disk into the host tier (or staging_ when it has no room) and copied whole at once, the blocks
  // found before it first: the host slots they are in may be reused for it.
  void find_or_load(const KvTransfer& t, std::size_t i) {
    if (std::span<const char> bytes = host_->find(t.hashes[i]); !bytes.empty()) {
      found_.emplace_back(bytes, t.blocks[i]);
      host_loaded_tokens_ += block_size_;
      return;
    }
    for (const auto& [bytes, block] : found_) copier_->copy_in(bytes, block);
    found_.clear();
    std::span<const char> bytes;
    if (disk_) {
      copier_->finish();  // staging_ and the host slots are the CPU's below
      if (disk_->read(t.hashes[i], staging_))
        bytes = host_->capacity() > 0 ? keep(t.hashes[i], staging_) : staging_;  // in use again
    }
    if (bytes.empty())
      throw loom::Error("offload: block " + std::to_string(t.hashes[i]) + " of sequence " + std::to_string(t.seq) +
                        " is no longer in the host or disk tier");
    copier_->copy_in(bytes, t.blocks[i]);
    if (bytes.data() == staging_.data()) copier_->finish();  // the next block reuses staging_
    disk_loaded_tokens_ += block_size_;
  }
  // A block that leaves the host tier goes to disk, when there is one, once the copy that may
  // still be filling its slot is done.
  HostTier::Spill spill() {
    if (!disk_) return {};
    return [this](BlockHash hash, std::span<const char> bytes) {
      copier_->finish();
      spilled_blocks_ += disk_->write(hash, bytes);
    };
  }
  // Into the host tier (which has room for at least one block), its least recent block to disk.
  std::span<const char> keep(BlockHash hash, std::span<const char> bytes) {
    std::span<char> slot = host_->insert(hash, spill());
    copier_->finish();  // no copy in flight reads or fills the slot
    std::memcpy(slot.data(), bytes.data(), bytes.size());
    return slot;
  }
  // A block already in the host tier (saved when it was computed, or kept before) holds the same
  // content, its hash says: it is only used again, not copied.
  void keep_from_cache(BlockHash hash, loom::sdk::BlockId block) {
    if (!host_->find(hash).empty()) return;
    ++kept_blocks_;
    if (std::span<char> slot = host_->insert(hash, spill()); !slot.empty()) {
      copier_->copy_out(block, slot);
      return;
    }
    if (!disk_) return;
    copier_->copy_out(block, staging_);
    copier_->finish();
    disk_->write(hash, staging_);
  }

  std::size_t block_size_;
  std::size_t block_bytes_;
  bool save_new_blocks_ = false;
  std::int64_t load_layer_groups_ = 2;
  std::unique_ptr<HostTier> host_;
  std::unique_ptr<DiskTier> disk_;
  std::unique_ptr<BlockCopier> copier_;  // destroyed first: its copies end before the tiers' memory goes
  std::vector<char> staging_;            // one block, read from disk or on its way there
  // The step's load: the cache, the blocks found in the host tier (their slots unchanged until
  // the next step) and where they go; the batches of its layer groups begun so far, of
  // num_load_batches_ of layers_per_load_batch_ layers each.
  KvCacheView load_cache_;
  std::vector<std::pair<std::span<const char>, loom::sdk::BlockId>> found_;
  std::vector<BlockCopier::BatchId> load_batches_;
  std::size_t layers_per_load_batch_ = 1, num_load_batches_ = 0;
  // Cumulative counts for the reports: tokens loaded from each tier, blocks handed to the host
  // tier by save / on_evicted, blocks written to disk when they left the host tier.
  std::uint64_t host_loaded_tokens_ = 0, disk_loaded_tokens_ = 0, kept_blocks_ = 0, spilled_blocks_ = 0;
};

}  // namespace

LOOM_PLUGIN(kv_connector, "offload", "0.1.0",
            "Offload tier: KV blocks evicted from the pool are kept in host memory, then on disk, and loaded "
            "back for a later request with the same prefix",
            OffloadConnector, kKeys)
