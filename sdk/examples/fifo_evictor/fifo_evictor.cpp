// evictor/fifo — an example of a third-party plugin: the policy is in fifo_evictor.h, its test in
// fifo_evictor_test.cpp, and this file declares the plugin and its one config key.
#include "fifo_evictor.h"

#include <loom/plugin.h>

namespace {

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"log_evictions", loom::sdk::KeyType::boolean, "false", "print each eviction to stderr"},
};

}  // namespace

LOOM_PLUGIN(evictor, "fifo", "1.0.0", "First in, first out: evicts the content cached earliest", fifo::FifoEvictor,
            kKeys)
