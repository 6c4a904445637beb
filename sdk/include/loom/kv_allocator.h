// Extension point `kv_allocator`: the pool of fixed-size KV blocks and every sequence's block table.
//
// The KV cache is num_blocks blocks of block_size token slots (per layer, K and V). The allocator
// decides which block holds which tokens: it keeps a block table per sequence, reference counts
// (blocks are shared by forks and by prefix hits), the prefix cache (full blocks findable by
// their chained content hash) and statistics. When no block is free it evicts a cached block
// that nobody references, chosen by the Evictor it was given.
//
// Token positions: a sequence's block table maps token position p to block table[p / block_size],
// slot p % block_size. The engine writes KV only into slots reserve() has made writable.
//
// Threading: all calls come from the engine thread. Errors: methods throw loom::Error only for
// a broken precondition that the caller could not have checked (documented per method).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "loom/evictor.h"
#include "loom/export.h"
#include "loom/plugin.h"
#include "loom/types.h"

namespace loom::sdk {

// Copy the content of block `src` into block `dst` (all layers) before the next forward pass.
struct BlockCopy {
  BlockId src = kNoBlock;
  BlockId dst = kNoBlock;
};

// A cached block whose content is about to be overwritten; KV connectors may offload it first.
struct EvictedBlock {
  BlockId block = kNoBlock;
  BlockHash hash = 0;
};

struct AllocatorStats {
  std::uint64_t num_blocks = 0;
  std::uint64_t used_blocks = 0;     // referenced by at least one sequence
  std::uint64_t cached_blocks = 0;   // unreferenced, content kept for prefix reuse (evictable)
  std::uint64_t free_blocks = 0;     // unreferenced, no content
  std::uint64_t lookup_blocks = 0;   // full blocks looked up in the prefix cache
  std::uint64_t hit_blocks = 0;      // of those, found
  std::uint64_t evictions = 0;       // cached blocks whose content was dropped for reuse
  std::uint64_t copies = 0;          // copy-on-write block copies
};

class LOOM_SDK_VISIBLE KvAllocator : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::kv_allocator;

  // Gives the allocator its eviction policy. Called exactly once, right after construction and
  // before any other method; the evictor outlives the allocator.
  virtual void set_evictor(Evictor& evictor) = 0;

  // Number of leading tokens of `tokens` whose KV is in the prefix cache now (a multiple of
  // block_size), without taking anything. For scheduling decisions. O(tokens / block_size).
  virtual std::size_t num_cached_prefix_tokens(std::span<const TokenId> tokens) const = 0;

  // Starts `seq` (new, or restarted after preemption): takes references on the longest cached
  // prefix of `tokens` and makes those blocks the start of its block table. Returns how many
  // tokens need no computing: a multiple of block_size, at most tokens.size() - 1 (the last
  // token is always computed, to produce logits). With prefix caching off, returns 0.
  // Precondition: `seq` has no block table. O(tokens / block_size).
  virtual std::size_t acquire_cached_prefix(SeqId seq, std::span<const TokenId> tokens, Tick now) = 0;

  // Number of blocks reserve(seq, start, num_tokens) would have to take from the pool now.
  virtual std::size_t blocks_needed(SeqId seq, std::size_t start, std::size_t num_tokens) const = 0;

  // Makes slots [start, start + num_tokens) of `seq` writable: grows its block table to hold
  // start + num_tokens slots (creating the table if needed) and gives it a private copy of every
  // block in that range that another sequence shares (after fork); a copy whose block holds
  // slots before `start`, which the sequence keeps, is queued in take_pending_copies(). The
  // caller says where the writes begin — the engine writes exactly the slots of the plan's
  // ranges — so the allocator never infers it from commit(). All or nothing: returns false and
  // changes nothing when the pool (free plus evictable blocks) cannot supply enough.
  // Amortized O(new blocks + blocks in the range).
  virtual bool reserve(SeqId seq, std::size_t start, std::size_t num_tokens, Tick now) = 0;

  // KV for tokens[0, tokens.size()) of `seq` is now stored. Newly full blocks get their chained
  // content hash and become findable by later lookups (when prefix caching is on).
  // Precondition: reserve() provided at least tokens.size() slots. O(new full blocks).
  virtual void commit(SeqId seq, std::span<const TokenId> tokens, Tick now) = 0;

  // Drops `seq`'s references and its block table (finished, failed or preempted). Blocks that
  // reach zero references keep their content and become evictor candidates when they are full
  // and hashed; other blocks become free. A seq without a table is a no-op. O(blocks of seq).
  virtual void release(SeqId seq, Tick now) = 0;

  // Shrinks the block table of `seq` to the blocks that hold its first `num_tokens` slots and
  // gives the rest back (the engine's use: slots reserved for draft tokens that verification
  // rejected). Blocks past the committed tokens were never hashed, so nothing of the rejected
  // drafts enters the prefix cache. Precondition: num_tokens >= the tokens committed. A seq
  // without a table is a no-op. O(blocks given back).
  virtual void trim(SeqId seq, std::size_t num_tokens, Tick now) = 0;

  // Makes `child` share every block of `parent` (n samples of one prompt); writes into a shared
  // block are copied first (see reserve). Precondition: `child` has no block table.
  virtual void fork(SeqId parent, SeqId child, Tick now) = 0;

  // Block copies queued by reserve() since the last call; the engine performs them before the
  // next forward pass.
  virtual std::vector<BlockCopy> take_pending_copies() = 0;

  // Cached blocks evicted since the last call, in eviction order.
  virtual std::vector<EvictedBlock> take_evictions() = 0;

  // The block table of `seq`; empty when it has none. Valid until the next non-const call.
  virtual std::span<const BlockId> block_table(SeqId seq) const = 0;

  // Blocks obtainable now without preempting anyone: free plus evictable. O(1).
  virtual std::size_t num_available_blocks() const = 0;

  virtual std::size_t num_blocks() const = 0;
  virtual std::size_t block_size() const = 0;
  virtual AllocatorStats stats() const = 0;
};

template <>
struct InterfaceOf<PluginKind::kv_allocator> {
  using type = KvAllocator;
};

}  // namespace loom::sdk
