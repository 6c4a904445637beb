// Extension point `attention`: how attention is computed over the paged KV cache on a device.
//
// Each engine step runs one batch: the tokens of all scheduled sequences, laid out one after the
// other (prefill chunks and decodes mixed). Before the first layer the engine calls prepare()
// with the step's per-sequence layout; the backend builds whatever metadata it needs (slot
// mapping, block tables and lengths on the device, split-K plans, the shared prefix relay
// attention reads once). Then, for every layer, forward() stores the step's new K and V into
// the cache and computes attention of the step's queries over each sequence's whole context.
//
// For CUDA graphs, prepare() must write its metadata into buffers the backend owns whose
// addresses stay the same from step to step for the same padded batch size; forward() must not
// allocate, synchronize, or read host memory that prepare() did not already copy.
//
// Threading: engine thread only; GPU work is enqueued on `stream`.
// Errors: prepare() throws loom::DeviceError when a device call fails, loom::Error when the
// batch exceeds what the backend was sized for; forward() throws loom::DeviceError only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loom/export.h"
#include "loom/plugin.h"
#include "loom/tensor.h"
#include "loom/types.h"

namespace loom::sdk {

// One sequence of the step. Its query rows are [q_start, q_start + q_len) of the batch; after
// this step its context holds ctx_len tokens, the last q_len of which are the step's new tokens,
// at positions ctx_len - q_len ... ctx_len - 1. Attention is causal within the sequence.
struct AttentionSeq {
  SeqId id = 0;
  std::uint32_t q_start = 0;
  std::uint32_t q_len = 0;
  std::uint32_t ctx_len = 0;
  std::span<const BlockId> block_table;  // covers ctx_len tokens
};

struct AttentionBatch {
  std::span<const AttentionSeq> seqs;
  std::uint32_t num_tokens = 0;    // sum of q_len
  std::uint32_t num_heads = 0;
  std::uint32_t num_kv_heads = 0;  // num_heads is a multiple of it (grouped-query attention)
  std::uint32_t head_dim = 0;
  float scale = 0.0f;              // softmax scale, usually 1/sqrt(head_dim)
};

// A prefix the backend's config names (relay attention's system prompt) for the engine to keep:
// token ids, or text the engine tokenizes as it does a prompt (with BOS). Empty: none.
struct PinnedPrefix {
  std::vector<TokenId> token_ids;
  std::string text;
  std::string named_by;  // where, for the engine's messages: "relay.toml:7: [attention] system_prompt"
};

class LOOM_SDK_VISIBLE AttentionBackend : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::attention;

  // Whether this backend runs on `device` with KV of `dtype`. The engine refuses a config whose
  // backend says no, before loading the model. O(1).
  virtual bool supports(const Device& device, DType kv_dtype) const = 0;

  // Builds the step's metadata. Called once per step before the first layer; `batch` and the
  // spans inside it are valid only during this call.
  virtual void prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream) = 0;

  // A prefix for the engine to compute once, before it serves any request, and to hold for its
  // lifetime: its whole blocks are never evicted, and every request that starts with it maps to
  // them through the prefix cache. Asked once, after construction. None by default.
  virtual PinnedPrefix pinned_prefix() const { return {}; }
  // The blocks holding the pinned prefix's whole blocks, once it is computed and before any
  // request is served; they stay the same for the engine's lifetime. Only after a non-empty
  // pinned_prefix().
  virtual void on_prefix_pinned(std::span<const BlockId> blocks) { (void)blocks; }

  // Which launches forward() will make for the step prepare() just laid out. The engine replays
  // a CUDA graph captured for a padded batch size only for steps of the same key, and captures
  // another for a new key: a backend whose launches depend on more than the tensors' shapes
  // (say, an extra kernel when the batch shares a prefix) returns a different number for each
  // variant. Launches that never change: 0. O(1).
  virtual std::uint64_t graph_key() const { return 0; }

  // For layer `layer`: writes k and v ([num_tokens, num_kv_heads, head_dim]) into the cache
  // slots of the step's tokens, then computes out = softmax(q k^T * scale) v per head with
  // q, out [num_tokens, num_heads, head_dim]. `out` may not alias `q`.
  virtual void forward(std::uint32_t layer, const TensorView& q, const TensorView& k,
                       const TensorView& v, const KvCacheView& cache, const TensorView& out,
                       Stream stream) = 0;
};

template <>
struct InterfaceOf<PluginKind::attention> {
  using type = AttentionBackend;
};

}  // namespace loom::sdk
