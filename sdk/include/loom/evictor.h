// Extension point `evictor`: which cached-but-unused KV block to reuse when the pool runs dry.
//
// With prefix caching, a KV block whose last sequence finished keeps its content so that a later
// request with the same prefix can reuse it. Such blocks (reference count zero, content hashed)
// are *candidates*; the allocator hands them to the evictor and, when it has no free block left,
// asks the evictor for a victim. The evictor only orders candidates: it never sees a block that
// a sequence still references, and it never frees anything itself.
//
// Besides candidates, the allocator reports every prefix-cache lookup (hit or miss) by content
// hash, so that frequency- and recency-based policies (LFU, ARC with ghost lists keyed by hash)
// can learn from blocks that are in use or long gone.
//
// Threading: all calls come from the engine thread, never concurrently.
// Errors: methods do not throw except where noted; a broken precondition is a bug in the caller.
#pragma once

#include <cstddef>

#include "loom/export.h"
#include "loom/plugin.h"
#include "loom/types.h"

namespace loom::sdk {

class LOOM_SDK_VISIBLE Evictor : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::evictor;

  // `block` became a candidate: its reference count dropped to zero and it holds full content
  // with hash `hash`. Precondition: `block` is not already a candidate. Expected O(1) or
  // O(log n); called once per released cached block.
  virtual void add_candidate(BlockId block, BlockHash hash, Tick now) = 0;

  // `block` stops being a candidate without being evicted: a prefix hit took it back into use.
  // Precondition: `block` is a candidate. Expected O(1) or O(log n).
  virtual void remove_candidate(BlockId block, Tick now) = 0;

  // Chooses a victim among the candidates, removes it from the candidates and returns it; the
  // allocator then drops its content and reuses it. Precondition: num_candidates() > 0.
  // Expected O(1) or O(log n) amortized.
  virtual BlockId evict(Tick now) = 0;

  // A prefix-cache lookup found content `hash` cached (the block may be a candidate or in use).
  virtual void on_hit(BlockHash hash, Tick now) = 0;

  // A lookup for content `hash` found nothing; the content will be computed and stored anew.
  // Policies with ghost entries (ARC) recognise recently evicted content here.
  virtual void on_miss(BlockHash hash, Tick now) = 0;

  // Number of candidates; O(1).
  virtual std::size_t num_candidates() const = 0;
};

template <>
struct InterfaceOf<PluginKind::evictor> {
  using type = Evictor;
};

}  // namespace loom::sdk
