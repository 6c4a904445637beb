// The thread pool of the CPU kernels: one persistent set of workers and parallel_for over a
// range in static contiguous chunks.
//
// Kernels split work over independent outputs only (rows, columns, heads), never inside one
// reduction, so results do not depend on the number of threads (see
// docs/design/batch-invariant-kernels.md). Workers spin briefly before sleeping, so the tens of
// calls per decoded token do not each pay a wake-up.
#pragma once

#include <cstddef>
#include <functional>

namespace loom::kernels::cpu {

// Threads used by parallel_for, the calling thread included: set_num_threads(n) with n >= 1,
// else (n <= 0) $LOOM_NUM_THREADS, else std::thread::hardware_concurrency(). Rebuilds the pool;
// must not be called while a kernel is running. Throws std::system_error, keeping the previous
// pool, when the system refuses that many threads.
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) over contiguous chunks covering [0, n) exactly once each, in parallel,
// and returns when all are done. The split is static: chunk c of `chunks` is
// [n*c/chunks, n*(c+1)/chunks), chunks = min(threads, n / min_chunk) (at least 1), so small n
// runs on the calling thread alone; which thread runs a chunk is decided at run time (the
// caller takes part and takes over chunks no worker has started). fn must not throw.
// Calls from several threads at once take turns; a parallel_for inside fn runs serially on the
// thread that calls it.
void parallel_for(std::size_t n, std::size_t min_chunk, const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace loom::kernels::cpu
