// A persistent pool of worker threads for the CPU kernels.
//
// Kernels split work over independent outputs only (rows, columns, heads), never inside one
// reduction, so results do not depend on the number of threads (see
// docs/design/batch-invariant-kernels.md). Workers spin briefly before sleeping, so the tens of
// calls per decoded token do not each pay a wake-up.
#pragma once

#include <cstddef>
#include <functional>

namespace loom::kernels::cpu {

// Threads used by parallel_for: set_num_threads(n) with n >= 1, else $LOOM_NUM_THREADS, else
// every core. Call before kernels run concurrently (not thread-safe with running kernels).
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) over contiguous chunks covering [0, n), in parallel; returns when all are
// done. Chunks hold at least `min_chunk` items, so small n runs on the calling thread alone.
// Not re-entrant: fn must not call parallel_for.
void parallel_for(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace loom::kernels::cpu
