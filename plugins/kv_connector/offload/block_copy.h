// Copying one KV block between the KV cache and host bytes, wherever the cache lives: K then V
// of every layer, one after the other, as the offload tiers store a block. On a CUDA device
// each layer's K and V are copied with cudaMemcpy (synchronous: a saved block is on the host, and
// a loaded one in the cache, when the call returns).
#pragma once

#include <span>

#include "loom/tensor.h"
#include "loom/types.h"

namespace loom::offload {

void copy_block_out(const sdk::KvCacheView& cache, sdk::BlockId block, std::span<char> to);
void copy_block_in(const sdk::KvCacheView& cache, sdk::BlockId block, std::span<const char> from);

}  // namespace loom::offload
