// Device limits in a build without CUDA: there is no device to measure.
#include "core/runtime/device_limits.h"

#include "loom/error.h"

namespace loom::runtime {

DeviceLimits measure_device_limits(bool) {
  throw DeviceError("this build of Loom has no CUDA backend: there are no GPU limits to measure");
}

}  // namespace loom::runtime
