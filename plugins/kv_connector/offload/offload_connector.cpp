// kv_connector/offload: KV blocks that leave the KV pool go to host memory instead of being
// lost, and from there to disk; a later request whose prefix they hold loads them back instead
// of recomputing them (docs/offload.md). Blocks are keyed by content hash, as the prefix cache
// keys them; which block leaves a full tier is chosen by an evictor plugin the engine lends
// (host_evictor, disk_evictor). Every failure is a miss: a block that cannot be saved is not
// saved, a block that cannot be read is recomputed by the engine; never wrong KV, never a failed
// request.
//
// The KV pool may be in host memory (the CPU engine) or on a CUDA device; on a GPU each block is
// copied layer by layer with synchronous copies (block_copy.h) — correct, not yet fast.
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "block_copy.h"
#include "disk_tier.h"
#include "host_tier.h"
#include "loom/block_hash.h"
#include "loom/engine_services.h"
#include "loom/error.h"
#include "loom/host_memory.h"
#include "loom/kv_connector.h"

namespace {

using loom::offload::copy_block_in;
using loom::offload::copy_block_out;
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
    host_ =
        std::make_unique<HostTier>(block_bytes_, host_blocks, tier_evictor(info, config, "host_evictor", host_blocks));
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
    staging_.resize(block_bytes_);
  }

  std::size_t num_loadable_tokens(std::span<const TokenId>, std::span<const BlockHash> hashes,
                                  std::size_t num_local_tokens) override {
    std::size_t block = num_local_tokens / block_size_;
    while (block < hashes.size() && (host_->contains(hashes[block]) || (disk_ && disk_->contains(hashes[block]))))
      ++block;
    return block * block_size_ - num_local_tokens;
  }

  // Copies each block from the host tier, or from disk through the host tier. A block that is no
  // longer in either (or fails its checksum) fails the load: the engine then recomputes.
  void start_load(std::span<const KvTransfer> loads, const KvCacheView& cache, Stream) override {
    for (const KvTransfer& t : loads)
      for (std::size_t i = 0; i < t.blocks.size(); ++i) {
        std::span<const char> bytes = host_->find(t.hashes[i]);
        std::uint64_t* loaded = &host_loaded_tokens_;
        if (bytes.empty() && disk_ && disk_->read(t.hashes[i], staging_)) {
          bytes = staging_;
          loaded = &disk_loaded_tokens_;
          if (host_->capacity() > 0) keep(t.hashes[i], staging_);  // back in the host tier: in use again
        }
        if (bytes.empty())
          throw loom::Error("offload: block " + std::to_string(t.hashes[i]) + " of sequence " + std::to_string(t.seq) +
                            " is no longer in the host or disk tier");
        copy_block_in(cache, t.blocks[i], bytes);
        *loaded += block_size_;
      }
  }

  void wait_for_load(Stream) override {}  // the copies above are done when start_load returns

  void save(std::span<const KvTransfer> saves, const KvCacheView& cache, Stream) override {
    if (!save_new_blocks_) return;
    for (const KvTransfer& t : saves)
      for (std::size_t i = 0; i < t.hashes.size(); ++i) keep_from_cache(t.hashes[i], cache, t.blocks[i]);
  }

  void on_evicted(std::span<const loom::sdk::EvictedBlock> blocks, const KvCacheView& cache, Stream) override {
    for (const auto& b : blocks) keep_from_cache(b.hash, cache, b.block);
  }

  void on_finished(loom::sdk::SeqId) override {}

  std::vector<std::pair<std::string, std::uint64_t>> counts() const override {
    return {{"host_loaded_tokens", host_loaded_tokens_},
            {"disk_loaded_tokens", disk_loaded_tokens_},
            {"kept_blocks", kept_blocks_},
            {"spilled_blocks", spilled_blocks_}};
  }

 private:
  // A block that leaves the host tier goes to disk, when there is one.
  HostTier::Spill spill() {
    if (!disk_) return {};
    return [this](BlockHash hash, std::span<const char> bytes) { spilled_blocks_ += disk_->write(hash, bytes); };
  }
  // Into the host tier (which has room for at least one block), its least recent block to disk.
  void keep(BlockHash hash, std::span<const char> bytes) {
    std::span<char> slot = host_->insert(hash, spill());
    std::memcpy(slot.data(), bytes.data(), bytes.size());
  }
  void keep_from_cache(BlockHash hash, const KvCacheView& cache, loom::sdk::BlockId block) {
    ++kept_blocks_;
    std::span<char> slot = host_->insert(hash, spill());
    copy_block_out(cache, block, slot.empty() ? std::span<char>(staging_) : slot);
    if (slot.empty() && disk_) disk_->write(hash, staging_);
  }

  std::size_t block_size_;
  std::size_t block_bytes_;
  bool save_new_blocks_ = false;
  std::unique_ptr<HostTier> host_;
  std::unique_ptr<DiskTier> disk_;
  std::vector<char> staging_;  // one block, read from disk or on its way there
  // Cumulative counts for the reports: tokens loaded from each tier, blocks handed to the host
  // tier by save / on_evicted, blocks written to disk when they left the host tier.
  std::uint64_t host_loaded_tokens_ = 0, disk_loaded_tokens_ = 0, kept_blocks_ = 0, spilled_blocks_ = 0;
};

}  // namespace

LOOM_PLUGIN(kv_connector, "offload", "0.1.0",
            "Offload tier: KV blocks evicted from the pool are kept in host memory, then on disk, and loaded "
            "back for a later request with the same prefix",
            OffloadConnector, kKeys)
