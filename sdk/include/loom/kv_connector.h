// Extension point `kv_connector`: moving KV blocks between the engine's device memory and
// somewhere else — host RAM and disk (an offload tier), or another engine (prefill/decode
// disaggregation) — overlapped with compute.
//
// The connector has two halves, as in vLLM. On the scheduling side it answers how many tokens
// of a prompt beyond the locally cached prefix it can supply; the engine then reserves blocks for
// them and asks the worker side to load them. On the worker side it loads into and saves from
// the cache asynchronously on its own stream, and offloads blocks the allocator evicts before
// their slots are overwritten.
//
// Order within a step: num_loadable_tokens (scheduling) -> start_load -> wait_for_layer_load
// before each layer reads the cache (or wait_for_load before the first, where the model does not
// run layer by layer) -> forward -> save -> (next step) on_evicted for blocks evicted while
// planning it, before the forward that overwrites them.
//
// Threading: engine thread only. Errors: loom::DeviceError for transfer failures; a load that
// fails makes the engine recompute those tokens instead (the request does not fail).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "loom/export.h"
#include "loom/kv_allocator.h"
#include "loom/plugin.h"
#include "loom/tensor.h"
#include "loom/types.h"

namespace loom::sdk {

// Blocks of one sequence to move: tokens [first_token, first_token + num_tokens) live in
// `blocks` (the corresponding slice of its block table), with the content hashes of the full
// ones in `hashes` (same order; may be shorter when the last block is partial).
struct KvTransfer {
  SeqId seq = 0;
  std::size_t first_token = 0;
  std::size_t num_tokens = 0;
  std::span<const BlockId> blocks;
  std::span<const BlockHash> hashes;
};

class LOOM_SDK_VISIBLE KvConnector : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::kv_connector;

  // Scheduling side: of `tokens`, whose first `num_local_tokens` are cached on the device, how
  // many more (a multiple of block_size) the connector can load. `block_hashes` are the chained
  // hashes of every full block of `tokens` (loom/block_hash.h), computed once per sequence by
  // the engine: a waiting sequence is asked every step. O(blocks looked up).
  virtual std::size_t num_loadable_tokens(std::span<const TokenId> tokens, std::span<const BlockHash> block_hashes,
                                          std::size_t num_local_tokens) = 0;

  // num_loadable_tokens()'s answer while the connector is still fetching this prompt's KV (from a
  // prefill instance, a slow tier) and will offer it at a later step: the engine leaves the
  // sequence out of this step's scheduling and asks again at the next. The connector bounds the
  // wait itself (a deadline, a peer that went away), then offers what it has, or 0 to compute.
  static constexpr std::size_t kLoadPending = static_cast<std::size_t>(-1);

  // The worker side's `stream` is the one forward passes read and write the cache on (a
  // cudaStream_t with a CUDA pool, nullptr on the CPU, where every call finishes its copies
  // before it returns). A GPU connector copies on a stream of its own and orders itself against
  // this one with events: its copies out of the cache wait for the work already on `stream`, and
  // `stream` waits for whatever must land before the next forward.

  // Worker side: begins loading; returns at once.
  virtual void start_load(std::span<const KvTransfer> loads, const KvCacheView& cache,
                          Stream stream) = 0;

  // The loads of start_load() are in the cache before anything enqueued on `stream` after this
  // call runs (a wait enqueued on `stream`, or a blocking one).
  virtual void wait_for_load(Stream stream) = 0;

  // The loads of start_load() for layer `layer` are in the cache before anything enqueued on
  // `stream` after this call runs. Called for layers 0, 1, … in order, each before that layer's
  // attention, when the model runs layer by layer: a connector that moves the first layers
  // first lets their compute overlap the rest of the load. By default, all at layer 0.
  virtual void wait_for_layer_load(std::uint32_t layer, Stream stream) {
    if (layer == 0) wait_for_load(stream);
  }

  // Saves the step's new full blocks (offload tier) or sends them (disaggregated prefill). They
  // stay unchanged while cached, so the copies may overlap the next steps.
  virtual void save(std::span<const KvTransfer> saves, const KvCacheView& cache, Stream stream) = 0;

  // Blocks the allocator evicted; their content is intact until the next work on `stream` (the
  // step's copy-on-write copies, then its forward), which must not start before the connector
  // has copied what it keeps.
  virtual void on_evicted(std::span<const EvictedBlock> blocks, const KvCacheView& cache,
                          Stream stream) = 0;

  // A sequence finished or was preempted: drop per-sequence state.
  virtual void on_finished(SeqId seq) = 0;

  // Named counts for the run's reports, cumulative since the connector was made (the offload
  // connector: tokens loaded from each tier, blocks kept, blocks in each tier). A count named
  // TIER_loaded_tokens is shown as that tier's share of the prompt tokens served; copied_in_bytes
  // with copy_in_ns (and _out_) as the copies' rate, against peak_in_mb_per_s (peak_out_…) when
  // given. A count named …_per_s is a rate, not cumulative. Must not throw.
  virtual std::vector<std::pair<std::string, std::uint64_t>> counts() const { return {}; }
};

template <>
struct InterfaceOf<PluginKind::kv_connector> {
  using type = KvConnector;
};

}  // namespace loom::sdk
