// The host memory that can be had now, for sizing pools and tiers against the machine: the
// engine's default CPU KV pool and its checks of kv.num_blocks / kv.cache_memory, and the offload
// connector's host tier. Header-only.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

namespace loom::sdk {

// MemAvailable from /proc/meminfo (free memory plus what the kernel can reclaim), else the free
// physical memory sysconf reports; 0 when neither is known.
inline std::uint64_t available_host_memory() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    std::uint64_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:") return kib * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  return pages > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace loom::sdk
