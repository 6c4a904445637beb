// The disk tier of the offload connector: one file per KV block in a folder, named by its content
// hash, behind a header (magic, format version, payload size, checksum) so that a file that is
// missing, truncated or corrupt is a miss and never wrong KV. When the tier's bytes would exceed
// its capacity the files its evictor chooses (tier_order.h) go first; a write that fails (a full
// disk) saves nothing. The folder's block files are the run's own: those of an earlier run are removed at
// start, since KV is only valid for the model that computed it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "tier_order.h"

namespace loom::offload {

class DiskTier {
 public:
  // Throws std::runtime_error when `folder` cannot be created or written in. `order` is told a
  // cache of files_for(block_bytes, capacity_bytes) blocks.
  DiskTier(std::filesystem::path folder, std::size_t block_bytes, std::uint64_t capacity_bytes,
           std::shared_ptr<sdk::Evictor> order);
  // How many block files fit in capacity_bytes.
  static std::uint64_t files_for(std::size_t block_bytes, std::uint64_t capacity_bytes);

  bool contains(sdk::BlockHash hash) const { return order_.contains(hash); }
  // Stores the block (replacing an older copy); false, with nothing stored, when it cannot.
  bool write(sdk::BlockHash hash, std::span<const char> bytes);
  // Reads the block into `out` (block_bytes long); false for a missing, short or corrupt file,
  // which is then forgotten.
  bool read(sdk::BlockHash hash, std::span<char> out);

  std::size_t size() const { return order_.size(); }
  std::uint64_t file_bytes() const { return file_bytes_; }

  // The file a block is stored in, for tests that damage it.
  std::filesystem::path path_of(sdk::BlockHash hash) const;

 private:
  void forget(sdk::BlockHash hash);

  std::filesystem::path folder_;
  std::size_t block_bytes_;
  std::uint64_t file_bytes_;  // header + payload
  TierOrder order_;
};

// A 64-bit checksum of `bytes` (not cryptographic: it catches torn writes and bit rot).
std::uint64_t checksum(std::span<const char> bytes);

}  // namespace loom::offload
