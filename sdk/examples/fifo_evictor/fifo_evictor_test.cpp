// FIFO against a hand-computed trace, with the SDK's cache replay (loom/testing/cache_replay.h):
// no engine, no model, microseconds. Exit code 0 when every check holds.
#include <cstdio>
#include <vector>

#include <loom/testing/cache_replay.h>

#include "fifo_evictor.h"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  loom::sdk::PluginConfig config("evictor");
  config.set("log_evictions", false, "test");
  fifo::FifoEvictor evictor(loom::sdk::EngineInfo{}, config);
  loom::sdk::testing::CacheReplay cache(evictor, 4);  // room for two prompts of two blocks

  const std::vector<loom::sdk::BlockHash> a = {11, 12}, b = {21, 22}, c = {31, 32};
  cache.run(a);  // cached: a (admitted first), then b
  cache.run(b);
  cache.run(a);  // two hits: a was reused most recently...
  check(cache.hits() == 2, "a prompt cached in full is hit in full");
  cache.run(c);  // ...yet FIFO evicts a, admitted first (LRU would evict b)
  check(cache.evictions() == 2, "a third prompt evicts two blocks");
  cache.run(b);
  check(cache.hits() == 4, "b, admitted after a, survives");
  cache.run(a);
  check(cache.hits() == 4, "a, admitted first, was evicted despite its reuse");
  check(cache.lookups() == 12, "every block of every prompt is looked up");
  check(evictor.num_candidates() == 4, "every cached block is a candidate between requests");

  if (failures == 0) std::printf("fifo: %llu hits of %llu lookups, as expected\n", (unsigned long long)cache.hits(),
                                 (unsigned long long)cache.lookups());
  return failures == 0 ? 0 : 1;
}
